//! `OfferRepository` on SQL, the same statements on Postgres and SQLite (sqlx
//! binds `$n` on both). Each change is one transaction: the conditional update
//! of the offer (`… WHERE status = 'open'`: of racing changes one finds the row
//! open, the others none), its messages through the batch append (the room's
//! next seqs, under the room lock), and its outbox events. Decimals are NUMERIC
//! on Postgres and TEXT on SQLite, always bound and read as text: exact.

use async_trait::async_trait;
use chat_domain::offer::{
    Commodity, Currency, DeliveryPlace, Incoterm, NewOffer, Note, Offer, OfferId, OfferStatus,
    OfferTerms, Price, Quantity, Side, Transition, Unit, delivery_date, system_message,
};
use chat_domain::ports::{Applied, DeletedOffer, OfferChange, OfferPage, OfferRepository};
use chat_domain::{
    ChatEvent, ChatEventType, CorrelationId, DomainError, Limit, Message, MessageId, MessageType,
    NewMessage, Posted, RoomId, timestamp,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseTransaction, QueryResult, Statement, Value,
};

use super::entity::{archived_message, message};
use super::errors::map_db_err;
use super::messages::delete_in;
use super::{SqlStore, outbox};

/// Every column, the decimals as text.
const COLUMNS: &str = "id, room_id, message_id, status, side, commodity, \
CAST(quantity AS TEXT) AS quantity, unit, CAST(price AS TEXT) AS price, currency, incoterm, \
delivery_place, delivery_from, delivery_to, note, item_id, from_user_id, to_user_id, \
parent_offer_id, expires_at, responded_by, responded_at, created_at";

/// The change of an open offer: only while open, and — but for expiry — only
/// before its `expires_at` (so an answer and the expiry never both win).
fn transition_sql(expiry: bool) -> String {
    let timing = if expiry {
        "expires_at IS NOT NULL AND expires_at <= $4"
    } else {
        "(expires_at IS NULL OR expires_at > $4)"
    };
    format!(
        "UPDATE offers SET status = $2, responded_by = $3, responded_at = $4 \
         WHERE id = $1 AND status = 'open' AND {timing} RETURNING {COLUMNS}"
    )
}

fn internal(what: &str, err: DomainError) -> DomainError {
    DomainError::Internal(format!("stored offer has a bad {what}: {err}"))
}

fn offer_of(row: &QueryResult) -> Result<Offer, DomainError> {
    let text = |column: &str| -> Result<String, DomainError> {
        row.try_get::<String>("", column).map_err(map_db_err)
    };
    let optional = |column: &str| -> Result<Option<String>, DomainError> {
        row.try_get::<Option<String>>("", column).map_err(map_db_err)
    };
    let date = |column: &'static str| -> Result<Option<chrono::NaiveDate>, DomainError> {
        optional(column)?
            .map(|d| delivery_date(column, &d).map_err(|e| internal(column, e)))
            .transpose()
    };
    let terms = OfferTerms {
        side: Side::parse(&text("side")?).map_err(|e| internal("side", e))?,
        commodity: Commodity::parse(&text("commodity")?).map_err(|e| internal("commodity", e))?,
        quantity: Quantity::parse(&text("quantity")?).map_err(|e| internal("quantity", e))?,
        unit: Unit::parse(&text("unit")?).map_err(|e| internal("unit", e))?,
        price: Price::parse(&text("price")?).map_err(|e| internal("price", e))?,
        currency: Currency::parse(&text("currency")?).map_err(|e| internal("currency", e))?,
        incoterm: optional("incoterm")?
            .map(|i| Incoterm::parse(&i).map_err(|e| internal("incoterm", e)))
            .transpose()?,
        delivery_place: optional("delivery_place")?
            .map(|p| DeliveryPlace::parse(&p).map_err(|e| internal("delivery_place", e)))
            .transpose()?,
        delivery_from: date("delivery_from")?,
        delivery_to: date("delivery_to")?,
        note: optional("note")?
            .map(|n| Note::parse(&n).map_err(|e| internal("note", e)))
            .transpose()?,
    };
    let id: i64 = row.try_get("", "id").map_err(map_db_err)?;
    let parent: Option<i64> = row.try_get("", "parent_offer_id").map_err(map_db_err)?;
    Ok(Offer {
        id: OfferId::new(id)?,
        room_id: RoomId::new(row.try_get("", "room_id").map_err(map_db_err)?)?,
        message_id: MessageId::new(row.try_get("", "message_id").map_err(map_db_err)?)?,
        status: OfferStatus::parse(&text("status")?).map_err(|e| internal("status", e))?,
        terms,
        item_id: optional("item_id")?,
        from_user_id: text("from_user_id")?,
        to_user_id: optional("to_user_id")?,
        parent_offer_id: parent.map(OfferId::new).transpose()?,
        expires_at: row.try_get("", "expires_at").map_err(map_db_err)?,
        responded_by: optional("responded_by")?,
        responded_at: row.try_get("", "responded_at").map_err(map_db_err)?,
        created_at: row.try_get("", "created_at").map_err(map_db_err)?,
    })
}

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

impl SqlStore {
    fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// The type decimals are bound as: NUMERIC on Postgres, TEXT on SQLite.
    fn decimal_type(&self) -> &'static str {
        match self.backend() {
            DatabaseBackend::Postgres => "NUMERIC",
            _ => "TEXT",
        }
    }

    async fn offers_where<C: ConnectionTrait>(
        &self,
        conn: &C,
        condition: &str,
        values: Vec<Value>,
    ) -> Result<Vec<Offer>, DomainError> {
        let sql = format!("SELECT {COLUMNS} FROM offers WHERE {condition}");
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(self.backend(), sql, values))
            .await
            .map_err(map_db_err)?;
        rows.iter().map(offer_of).collect()
    }

    async fn insert_offer(
        &self,
        txn: &DatabaseTransaction,
        new: &NewOffer,
        message: MessageId,
    ) -> Result<Offer, DomainError> {
        let num = self.decimal_type();
        let sql = format!(
            "INSERT INTO offers (room_id, message_id, status, side, commodity, quantity, unit, \
             price, currency, incoterm, delivery_place, delivery_from, delivery_to, note, \
             item_id, from_user_id, to_user_id, parent_offer_id, expires_at, created_at) \
             VALUES ($1, $2, 'open', $3, $4, CAST($5 AS {num}), $6, CAST($7 AS {num}), $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id"
        );
        let t = &new.terms;
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        let values: Vec<Value> = vec![
            new.room_id.get().into(),
            message.get().into(),
            t.side.as_str().into(),
            t.commodity.as_str().into(),
            t.quantity.to_string().into(),
            t.unit.as_str().into(),
            t.price.to_string().into(),
            t.currency.as_str().into(),
            t.incoterm.map(|i| i.as_str().to_owned()).into(),
            t.delivery_place.as_ref().map(|p| p.as_str().to_owned()).into(),
            date(t.delivery_from).into(),
            date(t.delivery_to).into(),
            t.note.as_ref().map(|n| n.as_str().to_owned()).into(),
            new.item_id.clone().into(),
            new.from_user.as_str().into(),
            new.to_user.as_ref().map(|u| u.as_str().to_owned()).into(),
            new.parent.map(OfferId::get).into(),
            new.expires_at.into(),
            new.created_at.into(),
        ];
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(self.backend(), sql, values))
            .await
            .map_err(map_db_err)?
            .ok_or_else(|| DomainError::Internal("an inserted offer was not returned".into()))?;
        let id: i64 = row.try_get("", "id").map_err(map_db_err)?;
        Ok(new.stored(OfferId::new(id)?, message))
    }

    /// Applies `change` if the offer is still open (and, but for expiry, not due).
    async fn transition(
        &self,
        txn: &DatabaseTransaction,
        change: &Transition,
    ) -> Result<Option<Offer>, DomainError> {
        let status: OfferStatus = change.outcome().into();
        let values: Vec<Value> = vec![
            change.offer().get().into(),
            status.as_str().into(),
            change.by().map(|u| u.as_str().to_owned()).into(),
            change.at().into(),
        ];
        let sql = transition_sql(change.is_expiry());
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(self.backend(), sql, values))
            .await
            .map_err(map_db_err)?;
        row.as_ref().map(offer_of).transpose()
    }

    async fn enqueue_offer_events(
        &self,
        txn: &DatabaseTransaction,
        events: &[(ChatEventType, &Offer)],
        correlation: Option<&CorrelationId>,
    ) -> Result<(), DomainError> {
        if !self.outbox {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(events.len());
        for (event_type, offer) in events {
            let at = offer.responded_at.unwrap_or(offer.created_at);
            let event =
                ChatEvent::offer(*event_type, offer, at).with_correlation(correlation.cloned());
            rows.push(outbox::event_row(&event).map_err(map_db_err)?);
        }
        outbox::enqueue_rows(txn, rows).await.map_err(map_db_err)
    }

    /// The current offer, for a change that found it no longer open.
    async fn refused(&self, txn: DatabaseTransaction, id: OfferId) -> Result<Applied, DomainError> {
        txn.rollback().await.map_err(map_db_err)?;
        self.find(id)
            .await?
            .map(|offer| Applied::NotOpen(Box::new(offer)))
            .ok_or_else(|| DomainError::NotFound(format!("offer {id} not found")))
    }
}

impl SqlStore {
    /// Puts the current offer on every `offer` message of `messages` (one
    /// query, only when there is one).
    pub(super) async fn attach_offers(&self, messages: &mut [Message]) -> Result<(), DomainError> {
        let ids: Vec<MessageId> = messages
            .iter()
            .filter(|m| m.message_type == MessageType::Offer)
            .map(|m| m.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let now = timestamp::now();
        let offers = self.of_messages(&ids).await?;
        for message in messages.iter_mut().filter(|m| m.message_type == MessageType::Offer) {
            message.offer = offers
                .iter()
                .find(|o| o.message_id == message.id)
                .map(|o| Box::new(o.clone().as_seen_at(now)));
        }
        Ok(())
    }
}

/// The stored message of each outcome, or the outcome's error (a deleted room).
fn created(outcomes: Vec<Result<Posted, DomainError>>) -> Result<Vec<Message>, DomainError> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome? {
            Posted::Created(m) => Ok(m),
            Posted::Duplicate(_) => Err(DomainError::Internal("a system message repeated".into())),
        })
        .collect()
}

#[async_trait]
impl OfferRepository for SqlStore {
    async fn create(&self, new: &NewOffer) -> Result<Posted, DomainError> {
        let txn = self.begin_write().await?;
        let within = self.append_within(&txn, std::slice::from_ref(&new.message)).await?;
        let outcome = within
            .outcomes()
            .into_iter()
            .next()
            .ok_or_else(|| DomainError::Internal("an offer's message has no outcome".into()))?;
        let mut message = match outcome {
            Ok(Posted::Created(message)) => message,
            Ok(Posted::Duplicate(mut original)) => {
                txn.rollback().await.map_err(map_db_err)?;
                original.offer = self.of_messages(&[original.id]).await?.pop().map(Box::new);
                if original.offer.is_none() {
                    return Err(DomainError::Conflict(
                        "client_msg_id: already used for a message that is not an offer".into(),
                    ));
                }
                return Ok(Posted::Duplicate(original));
            }
            Err(error) => return Err(error),
        };
        let offer = self.insert_offer(&txn, new, message.id).await?;
        self.enqueue_offer_events(
            &txn,
            &[(ChatEventType::OfferCreated, &offer)],
            new.message.correlation_id.as_ref(),
        )
        .await?;
        txn.commit().await.map_err(map_db_err)?;
        self.committed_within(within);
        message.offer = Some(Box::new(offer));
        Ok(Posted::Created(message))
    }

    async fn find(&self, id: OfferId) -> Result<Option<Offer>, DomainError> {
        Ok(self.offers_where(&self.db, "id = $1", vec![id.get().into()]).await?.pop())
    }

    async fn of_messages(&self, ids: &[MessageId]) -> Result<Vec<Offer>, DomainError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let condition = format!("message_id IN ({})", placeholders(1, ids.len()));
        let values = ids.iter().map(|id| id.get().into()).collect();
        self.offers_where(&self.db, &condition, values).await
    }

    async fn list(
        &self,
        room: RoomId,
        status: Option<OfferStatus>,
        after: Option<OfferId>,
        limit: Limit,
        now: DateTime<Utc>,
    ) -> Result<OfferPage, DomainError> {
        let mut condition = "room_id = $1".to_owned();
        let mut values: Vec<Value> = vec![room.get().into()];
        if let Some(after) = after {
            values.push(after.get().into());
            condition.push_str(&format!(" AND id < ${}", values.len()));
        }
        match status {
            None => {}
            Some(OfferStatus::Open) => {
                values.push(now.into());
                let n = values.len();
                condition.push_str(&format!(
                    " AND status = 'open' AND (expires_at IS NULL OR expires_at > ${n})"
                ));
            }
            Some(OfferStatus::Expired) => {
                values.push(now.into());
                let n = values.len();
                condition.push_str(&format!(
                    " AND (status = 'expired' OR (status = 'open' AND expires_at <= ${n}))"
                ));
            }
            Some(other) => {
                values.push(other.as_str().into());
                condition.push_str(&format!(" AND status = ${}", values.len()));
            }
        }
        let wanted = limit.get() as usize;
        values.push((wanted as i64 + 1).into());
        condition.push_str(&format!(" ORDER BY id DESC LIMIT ${}", values.len()));
        let mut items = self.offers_where(&self.db, &condition, values).await?;
        let next = if items.len() > wanted {
            items.truncate(wanted);
            items.last().map(|o| o.id)
        } else {
            None
        };
        Ok(OfferPage { items, next })
    }

    async fn apply(
        &self,
        change: &Transition,
        system: &NewMessage,
    ) -> Result<Applied, DomainError> {
        let txn = self.begin_write().await?;
        let Some(offer) = self.transition(&txn, change).await? else {
            return self.refused(txn, change.offer()).await;
        };
        let within = self.append_within(&txn, std::slice::from_ref(system)).await?;
        let messages = created(within.outcomes())?;
        let event = ChatEventType::of_outcome(change.outcome());
        self.enqueue_offer_events(&txn, &[(event, &offer)], system.correlation_id.as_ref()).await?;
        txn.commit().await.map_err(map_db_err)?;
        self.committed_within(within);
        Ok(Applied::Changed(Box::new(OfferChange { offer, created: None, messages })))
    }

    async fn counter(
        &self,
        change: &Transition,
        system: &NewMessage,
        new: &NewOffer,
    ) -> Result<Applied, DomainError> {
        let txn = self.begin_write().await?;
        let Some(parent) = self.transition(&txn, change).await? else {
            return self.refused(txn, change.offer()).await;
        };
        let batch = [system.clone(), new.message.clone()];
        let within = self.append_within(&txn, &batch).await?;
        let mut messages = created(within.outcomes())?;
        let offer_message = messages
            .get_mut(1)
            .ok_or_else(|| DomainError::Internal("a counter's offer message is missing".into()))?;
        let offer = self.insert_offer(&txn, new, offer_message.id).await?;
        offer_message.offer = Some(Box::new(offer.clone()));
        self.enqueue_offer_events(
            &txn,
            &[(ChatEventType::OfferCountered, &parent), (ChatEventType::OfferCreated, &offer)],
            system.correlation_id.as_ref(),
        )
        .await?;
        txn.commit().await.map_err(map_db_err)?;
        self.committed_within(within);
        Ok(Applied::Changed(Box::new(OfferChange {
            offer: parent,
            created: Some(offer),
            messages,
        })))
    }

    async fn delete_message(
        &self,
        id: MessageId,
        withdraw: Option<(&Transition, &NewMessage)>,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<DeletedOffer>, DomainError> {
        let txn = self.begin_write().await?;
        let deleted = match delete_in::<message::Entity>(&txn, id, at).await? {
            Some(deleted) => Some(deleted),
            None => delete_in::<archived_message::Entity>(&txn, id, at).await?,
        };
        let Some(deleted) = deleted else {
            txn.rollback().await.map_err(map_db_err)?;
            return Ok(None);
        };
        if self.outbox {
            let event =
                ChatEvent::message_deleted(&deleted, at).with_correlation(correlation.cloned());
            outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
        }
        let mut withdrawn = None;
        let mut within = None;
        if let Some((change, system)) = withdraw
            && let Some(offer) = self.transition(&txn, change).await?
        {
            let stored = self.append_within(&txn, std::slice::from_ref(system)).await?;
            let messages = created(stored.outcomes())?;
            self.enqueue_offer_events(
                &txn,
                &[(ChatEventType::OfferWithdrawn, &offer)],
                correlation,
            )
            .await?;
            withdrawn = Some(OfferChange { offer, created: None, messages });
            within = Some(stored);
        }
        txn.commit().await.map_err(map_db_err)?;
        match within {
            Some(within) => self.committed_within(within),
            None => self.outbox_wrote(),
        }
        Ok(Some(DeletedOffer { message: deleted, withdrawn }))
    }

    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OfferChange>, DomainError> {
        let txn = self.begin_write().await?;
        // Another instance's run holds its rows: skip them rather than wait.
        let lock = match self.backend() {
            DatabaseBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let condition = format!(
            "status = 'open' AND expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY expires_at, id LIMIT $2{lock}"
        );
        let due =
            self.offers_where(&txn, &condition, vec![now.into(), i64::from(limit).into()]).await?;
        let mut expired = Vec::with_capacity(due.len());
        let mut notices = Vec::with_capacity(due.len());
        for offer in &due {
            let Some(change) = offer.expire(now) else { continue };
            if let Some(after) = self.transition(&txn, &change).await? {
                notices.push(system_message(after.room_id, &change, None)?);
                expired.push(after);
            }
        }
        if expired.is_empty() {
            txn.rollback().await.map_err(map_db_err)?;
            return Ok(Vec::new());
        }
        let within = self.append_within(&txn, &notices).await?;
        let mut changes = Vec::with_capacity(expired.len());
        for (offer, outcome) in expired.into_iter().zip(within.outcomes()) {
            // A deleted room takes no message; its offer still expires.
            let messages = match outcome {
                Ok(Posted::Created(m)) => vec![m],
                _ => Vec::new(),
            };
            changes.push(OfferChange { offer, created: None, messages });
        }
        let events: Vec<(ChatEventType, &Offer)> =
            changes.iter().map(|c| (ChatEventType::OfferExpired, &c.offer)).collect();
        self.enqueue_offer_events(&txn, &events, None).await?;
        txn.commit().await.map_err(map_db_err)?;
        self.committed_within(within);
        Ok(changes)
    }
}
