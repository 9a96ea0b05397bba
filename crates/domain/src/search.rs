//! Full-text search of message history: the query language (words matched
//! case-insensitively, the last word as a prefix so search-as-you-type works),
//! the filters, and the highlighted snippet shown with each hit.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{DomainError, Limit, Message, MessageId, RoomId};

/// The words of a query: lower-case runs of letters and digits, any language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// The longest query, counted as sent; it bounds the words too.
    pub const MAX_CHARS: usize = 200;

    /// The words of a query: runs of letters and digits, lower-cased. A query
    /// without any (punctuation only) is valid and finds nothing.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::validation("q", "must not be empty"));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "q",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Self(words(trimmed).map(|(_, w)| w.to_lowercase()).collect()))
    }

    /// Every word but the last must match whole; the last may be a prefix.
    pub fn words(&self) -> &[String] {
        &self.0
    }

    fn matches(&self, word: &str) -> bool {
        let word = word.to_lowercase();
        match self.0.split_last() {
            Some((last, whole)) => whole.contains(&word) || word.starts_with(last.as_str()),
            None => false,
        }
    }
}

/// Words of `text` with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
}

/// What to search and where.
#[derive(Debug, Clone)]
pub struct SearchFilter {
    pub terms: SearchTerms,
    pub room: Option<RoomId>,
    pub user: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Continue below this message id (newest first).
    pub before: Option<MessageId>,
    pub limit: Limit,
}

/// One hit: the message and a short excerpt with the matches marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchHit {
    #[serde(flatten)]
    pub message: Message,
    /// HTML-escaped excerpt of the content with each match in `<mark>…</mark>`.
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<MessageId>,
}

const BEFORE_CHARS: usize = 40;
const SNIPPET_CHARS: usize = 160;

/// An excerpt of `content` around its first match, HTML-escaped, with every
/// matching word wrapped in `<mark>`, and `…` where it was cut.
pub fn snippet(content: &str, terms: &SearchTerms) -> String {
    let hits: Vec<(usize, usize)> =
        words(content).filter(|(_, w)| terms.matches(w)).map(|(i, w)| (i, i + w.len())).collect();
    let first = hits.first().map(|(s, _)| *s).unwrap_or(0);
    let chars: Vec<(usize, char)> = content.char_indices().collect();
    let first_char = chars.iter().position(|(i, _)| *i >= first).unwrap_or(0);
    let start_char = first_char.saturating_sub(BEFORE_CHARS);
    let end_char = (start_char + SNIPPET_CHARS).min(chars.len());
    let start = chars.get(start_char).map(|(i, _)| *i).unwrap_or(0);
    let end = chars.get(end_char).map(|(i, _)| *i).unwrap_or(content.len());

    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for (s, e) in hits.into_iter().filter(|(s, e)| *s >= start && *e <= end) {
        escape_into(&mut out, &content[at..s]);
        out.push_str("<mark>");
        escape_into(&mut out, &content[s..e]);
        out.push_str("</mark>");
        at = e;
    }
    escape_into(&mut out, &content[at..end]);
    if end < content.len() {
        out.push('…');
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_of_any_language() {
        assert_eq!(SearchTerms::parse("  Пшениця, WHEAT! ").unwrap().words(), ["пшениця", "wheat"]);
        assert!(SearchTerms::parse("").is_err());
        assert!(SearchTerms::parse(" !?… ").unwrap().words().is_empty(), "valid, finds nothing");
        assert!(SearchTerms::parse(&"a".repeat(201)).is_err());
        assert!(SearchTerms::parse(&format!("a{}", " ".repeat(200))).is_err(), "counted as sent");
        assert_eq!(SearchTerms::parse("a b c d e f g h i j k").unwrap().words().len(), 11);
    }

    #[test]
    fn snippets_mark_matches_and_escape_the_rest() {
        let terms = SearchTerms::parse("price whe").unwrap();
        let s = snippet("New <b>price</b> for Wheat & barley", &terms);
        assert_eq!(
            s,
            "New &lt;b&gt;<mark>price</mark>&lt;/b&gt; for <mark>Wheat</mark> &amp; barley"
        );
        let long = format!("{} пшениця {}", "слово ".repeat(30), "кінець ".repeat(40));
        let s = snippet(&long, &SearchTerms::parse("ПШЕНИЦЯ").unwrap());
        assert!(
            s.starts_with('…') && s.ends_with('…') && s.contains("<mark>пшениця</mark>"),
            "{s}"
        );
    }
}
