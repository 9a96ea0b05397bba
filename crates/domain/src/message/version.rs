//! The texts a message had: every edit keeps the text it replaced.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One text of a message: `version` 1 is the text it was posted with; the
/// highest is its current text. `created_at` is when that text became the
/// message's (its creation, or the edit that wrote it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageVersion {
    pub version: u32,
    pub content: String,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub created_at: DateTime<Utc>,
}

/// A message's versions, oldest first: the replaced texts as stored, then the
/// current text (`current`, current since `since`) as the last version.
pub fn with_current(
    mut replaced: Vec<MessageVersion>,
    current: String,
    since: DateTime<Utc>,
) -> Vec<MessageVersion> {
    replaced.sort_unstable_by_key(|v| v.version);
    let next = replaced.last().map_or(1, |v| v.version.saturating_add(1));
    replaced.push(MessageVersion { version: next, content: current, created_at: since });
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_text_comes_last() {
        let at = crate::timestamp::now();
        let only = with_current(Vec::new(), "hi".into(), at);
        assert_eq!(only, vec![MessageVersion { version: 1, content: "hi".into(), created_at: at }]);
        let old = |version, content: &str| MessageVersion {
            version,
            content: content.into(),
            created_at: at,
        };
        let all = with_current(vec![old(2, "b"), old(1, "a")], "c".into(), at);
        let texts: Vec<_> = all.iter().map(|v| (v.version, v.content.as_str())).collect();
        assert_eq!(texts, [(1, "a"), (2, "b"), (3, "c")]);
    }
}
