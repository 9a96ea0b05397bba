//! The state machine and its rules, by role.

use chrono::TimeDelta;

use super::*;
use crate::{DomainError, MessageId, RoomId, UserId, timestamp};

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

fn offer(to: Option<&str>) -> Offer {
    let terms = TermsInput {
        side: Some("sell".into()),
        commodity: Some("wheat".into()),
        quantity: Some("100".into()),
        unit: Some("t".into()),
        price: Some("210".into()),
        currency: Some("UAH".into()),
        ..Default::default()
    }
    .parse()
    .unwrap();
    Offer {
        id: OfferId::new(7).unwrap(),
        room_id: RoomId::new(1).unwrap(),
        message_id: MessageId::new(3).unwrap(),
        status: OfferStatus::Open,
        terms,
        item_id: None,
        from_user_id: "alice".into(),
        to_user_id: to.map(str::to_owned),
        parent_offer_id: None,
        expires_at: None,
        responded_by: None,
        responded_at: None,
        created_at: timestamp::now(),
    }
}

const COUNTERPARTY: [OfferAnswer; 3] =
    [OfferAnswer::Accept, OfferAnswer::Decline, OfferAnswer::Counter];

#[test]
fn the_counterparty_answers_and_the_author_withdraws() {
    let now = timestamp::now();
    let open = offer(None);
    for answer in COUNTERPARTY {
        let t = open.answer(&user("bob"), answer, now).unwrap();
        assert_eq!(t.outcome(), answer.outcome());
        assert_eq!(t.by().map(UserId::as_str), Some("bob"));
        let after = open.clone().after(&t);
        assert_eq!(after.status, OfferStatus::from(answer.outcome()));
        assert_eq!(after.responded_by.as_deref(), Some("bob"));
        assert!(after.status.is_final());
        assert!(matches!(open.answer(&user("alice"), answer, now), Err(DomainError::Forbidden(_))));
    }
    let t = open.answer(&user("alice"), OfferAnswer::Withdraw, now).unwrap();
    assert_eq!(t.outcome(), Outcome::Withdrawn);
    assert!(matches!(
        open.answer(&user("bob"), OfferAnswer::Withdraw, now),
        Err(DomainError::Forbidden(_))
    ));
}

#[test]
fn an_addressed_offer_is_answered_by_its_addressee_only() {
    let now = timestamp::now();
    let open = offer(Some("bob"));
    for answer in COUNTERPARTY {
        assert!(open.answer(&user("bob"), answer, now).is_ok());
        assert!(matches!(open.answer(&user("carol"), answer, now), Err(DomainError::Forbidden(_))));
        assert!(matches!(open.answer(&user("alice"), answer, now), Err(DomainError::Forbidden(_))));
    }
    assert!(open.answer(&user("alice"), OfferAnswer::Withdraw, now).is_ok());
    assert!(open.answer(&user("bob"), OfferAnswer::Withdraw, now).is_err());
}

#[test]
fn every_final_status_refuses_every_change_naming_itself() {
    let now = timestamp::now();
    for status in OfferStatus::ALL.into_iter().filter(|s| s.is_final()) {
        let closed = Offer { status, ..offer(None) };
        for answer in COUNTERPARTY {
            match closed.answer(&user("bob"), answer, now) {
                Err(DomainError::Conflict(m)) => assert!(m.contains(status.as_str()), "{m}"),
                other => panic!("{status:?} {answer:?}: {other:?}"),
            }
        }
        assert!(matches!(
            closed.answer(&user("alice"), OfferAnswer::Withdraw, now),
            Err(DomainError::Conflict(_))
        ));
        assert!(closed.expire(now + TimeDelta::days(1)).is_none());
    }
}

#[test]
fn past_its_expiry_an_open_offer_reads_expired_and_refuses_answers() {
    let now = timestamp::now();
    let due = Offer { expires_at: Some(now - TimeDelta::seconds(1)), ..offer(None) };
    assert!(!due.is_open_at(now));
    assert_eq!(due.clone().as_seen_at(now).status, OfferStatus::Expired);
    match due.answer(&user("bob"), OfferAnswer::Accept, now) {
        Err(DomainError::Conflict(m)) => assert!(m.contains("expired"), "{m}"),
        other => panic!("{other:?}"),
    }
    let t = due.expire(now).unwrap();
    assert!(t.is_expiry() && t.by().is_none());
    let later = Offer { expires_at: Some(now + TimeDelta::hours(1)), ..offer(None) };
    assert!(later.expire(now).is_none());
    assert_eq!(later.clone().as_seen_at(now).status, OfferStatus::Open);
}

#[test]
fn status_strings_and_messages() {
    for status in OfferStatus::ALL {
        assert_eq!(OfferStatus::parse(status.as_str()).unwrap(), status);
    }
    assert!(OfferStatus::parse("OPEN").is_err());
    let open = offer(None);
    let t = open.answer(&user("seller7"), OfferAnswer::Accept, timestamp::now()).unwrap();
    let system = system_message(open.room_id, &t, None).unwrap();
    assert_eq!(system.content.as_str(), "seller7 accepted the offer");
    assert_eq!(system.user_id.as_str(), "seller7");
    let json = serde_json::to_value(&open).unwrap();
    assert_eq!(json["status"], "open");
    assert_eq!(json["quantity"], "100");
    assert_eq!(json["side"], "sell");
    assert!(json["to_user_id"].is_null() && json["expires_at"].is_null());
    let back: Offer = serde_json::from_value(json).unwrap();
    assert_eq!(back, open);
}
