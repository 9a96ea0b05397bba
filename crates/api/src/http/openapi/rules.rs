//! What the service checks in free text, said once as JSON Schema (length and
//! pattern) and put on every parameter and body field it applies to, so the
//! description allows exactly what the value types of the domain accept.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayItems, Object, ObjectBuilder, Schema, Type};

/// One rule: lengths in characters and a pattern (ECMA-262, which Python's
/// `re` reads the same way for these).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub min: Option<usize>,
    pub max: Option<usize>,
    pub pattern: &'static str,
}

/// Control characters as Rust's `char::is_control` has them (Unicode Cc).
macro_rules! cc {
    () => {
        r"\u0000-\u001f\u007f-\u009f"
    };
}

/// Whitespace as Rust's `str::trim` has it (Unicode White_Space), spelled
/// out: regex engines disagree on `\s`.
macro_rules! ws {
    () => {
        r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Text the service trims, that must keep 1 to `$max` characters, the first
/// and last not whitespace, none a control character. The length bound is in
/// the pattern: `maxLength` would count the whitespace trimmed away.
macro_rules! trimmed {
    ($inner:literal) => {
        concat!(
            "^[",
            ws!(),
            "]*[^",
            ws!(),
            cc!(),
            "]([^",
            cc!(),
            "]{0,",
            $inner,
            "}[^",
            ws!(),
            cc!(),
            "])?[",
            ws!(),
            "]*$"
        )
    };
}

/// A user id: 1–64 characters after trimming, no control characters.
pub const USER_ID: Rule = Rule { min: Some(1), max: None, pattern: trimmed!(62) };

/// A user id in a header, which carries visible ASCII (and inner spaces) only:
/// HTTP drops whitespace around a header value.
pub const HEADER_USER_ID: Rule =
    Rule { min: Some(1), max: Some(64), pattern: r"^[!-~]([ -~]{0,62}[!-~])?$" };

/// A GrainTrade item id: 1–64 characters, no control characters, no `/`.
pub const ITEM_ID: Rule =
    Rule { min: Some(1), max: Some(64), pattern: concat!("^[^/", cc!(), "]+$") };

/// A room name: 1–100 characters after trimming, no control characters.
pub const ROOM_NAME: Rule = Rule { min: Some(1), max: None, pattern: trimmed!(98) };

/// A room's description: at most 1000 characters; newline, tab and CR allowed.
pub const DESCRIPTION: Rule = Rule {
    min: None,
    max: Some(1000),
    pattern: r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$",
};

/// Message content: 1–4000 characters, not only whitespace, no control
/// characters but newline and tab.
pub const CONTENT: Rule = Rule {
    min: Some(1),
    max: Some(4000),
    pattern: concat!(
        r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*[^",
        ws!(),
        cc!(),
        r"][^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$"
    ),
};

/// An idempotency key: 1–64 characters, no control characters.
pub const CLIENT_MSG_ID: Rule =
    Rule { min: Some(1), max: Some(64), pattern: concat!("^[^", cc!(), "]+$") };

/// A reaction's key: 1–32 characters, no whitespace, no control characters.
pub const REACTION_KEY: Rule =
    Rule { min: Some(1), max: Some(32), pattern: concat!("^[^", ws!(), cc!(), "]+$") };

/// A search query: 1–200 characters, not only whitespace (its words are the
/// runs of letters and digits, which regex dialects do not agree on).
pub const SEARCH_QUERY: Rule =
    Rule { min: Some(1), max: Some(200), pattern: concat!("[^", ws!(), "]") };

/// A cursor this service issued: a positive id.
pub const CURSOR: Rule = Rule { min: None, max: None, pattern: r"^[1-9][0-9]{0,17}$" };

/// A cursor of the inbox this service issued: microseconds since 1970 and a
/// room id (`InboxCursor`).
pub const INBOX_CURSOR: Rule =
    Rule { min: None, max: None, pattern: r"^[0-9]{1,16}_[1-9][0-9]{0,17}$" };

/// A room's id in a path where only ids are taken.
pub const ROOM_ID_TEXT: Rule = CURSOR;

/// The schema of a string that follows `rule`.
pub fn string(rule: Rule) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(rule.min)
        .max_length(rule.max)
        .pattern(Some(rule.pattern))
        .build()
}

/// Puts `rule` on a (possibly nullable) string schema, or on the items of an
/// array of strings; keeps its type, description and examples.
pub fn constrain(schema: &mut RefOr<Schema>, rule: Rule) {
    match schema {
        RefOr::T(Schema::Object(object)) => {
            object.min_length = rule.min;
            object.max_length = rule.max;
            object.pattern = Some(rule.pattern.to_owned());
        }
        RefOr::T(Schema::Array(array)) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                constrain(items, rule);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns hold for what the domain accepts and refuse what it refuses
    /// (the `regex` crate reads these patterns as Python, which the fuzzer
    /// generates with, does).
    fn matches(rule: Rule, text: &str) -> bool {
        let length = text.chars().count();
        regex::Regex::new(rule.pattern).unwrap().is_match(text)
            && rule.min.is_none_or(|min| length >= min)
            && rule.max.is_none_or(|max| length <= max)
    }

    #[test]
    fn the_rules_agree_with_the_domain() {
        use chat_domain::conversation::ItemId;
        use chat_domain::{ClientMsgId, MessageContent, ReactionKey, RoomName, UserId};
        let samples = [
            "bob",
            "",
            " ",
            " bob ",
            "b\u{0}b",
            "b\u{85}b",
            "пшениця",
            "a/b",
            "a\tb",
            "a\nb",
            "x\r",
            "\r\nx\u{85}",
            "\u{1c}x",
            "x\u{2028}",
            "\u{7f}",
            "😀",
            "_",
            "!!!",
            "wheat odes",
            "\t",
        ];
        for text in samples {
            assert_eq!(matches(USER_ID, text), UserId::parse(text).is_ok(), "user id {text:?}");
            assert_eq!(matches(ITEM_ID, text), ItemId::parse(text).is_ok(), "item id {text:?}");
            assert_eq!(matches(ROOM_NAME, text), RoomName::parse(text).is_ok(), "name {text:?}");
            assert_eq!(
                matches(CONTENT, text),
                MessageContent::parse(text).is_ok(),
                "content {text:?}"
            );
            assert_eq!(
                matches(CLIENT_MSG_ID, text),
                ClientMsgId::parse(text).is_ok(),
                "key {text:?}"
            );
            assert_eq!(
                matches(REACTION_KEY, text),
                ReactionKey::parse(text).is_ok(),
                "reaction key {text:?}"
            );
        }
        assert!(matches(REACTION_KEY, &"ї".repeat(32)) && !matches(REACTION_KEY, &"k".repeat(33)));
        assert!(matches(USER_ID, &"u".repeat(64)) && !matches(USER_ID, &"u".repeat(65)));
        assert!(matches(ROOM_NAME, &format!("  {}\u{85}", "n".repeat(100))), "trimmed length");
        assert!(!matches(ROOM_NAME, &"n".repeat(101)));
        use chat_domain::search::SearchTerms;
        for text in samples.iter().copied().chain(["x", "x!!y", "  wheat  ", "__"]) {
            assert_eq!(
                matches(SEARCH_QUERY, text),
                SearchTerms::parse(text).is_ok(),
                "query {text:?}"
            );
        }
        for text in ["bob", "b o b", " bob", "bob\t", "боб", "", &"u".repeat(64), &"u".repeat(65)]
        {
            let ascii = text.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
            let header = ascii && text.trim() == text;
            assert_eq!(
                matches(HEADER_USER_ID, text),
                header && UserId::parse(text).is_ok(),
                "header {text:?}"
            );
        }
        for text in ["1767268800123456_9", "0_1", "1_0", "x_1", "12", "", "1_-3"] {
            let issued = chat_domain::read_state::InboxCursor::parse(text).is_ok();
            assert_eq!(matches(INBOX_CURSOR, text), issued, "inbox cursor {text:?}");
        }
        for text in ["1", "42", "0", "-1", "abc", "", "999999999999999999"] {
            let issued = text.parse::<i64>().is_ok_and(|id| id > 0);
            assert_eq!(matches(CURSOR, text), issued, "cursor {text:?}");
        }
    }
}
