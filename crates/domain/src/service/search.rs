//! Search use cases: one room, or every room the caller may read.

use chrono::{DateTime, Utc};

use crate::ports::RoomVisibility;
use crate::search::{SearchFilter, SearchHit, SearchPage, SearchTerms, snippet};
use crate::{Actor, ChatService, DomainError, Limit, MessageId, RoomId};

/// Raw search parameters, as a client sent them.
#[derive(Debug, Clone, Default)]
pub struct SearchInput {
    pub q: String,
    pub user_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub before: Option<MessageId>,
}

impl ChatService {
    pub async fn search_room(
        &self,
        actor: &Actor,
        room: RoomId,
        input: SearchInput,
    ) -> Result<SearchPage, DomainError> {
        self.get_room(actor, room).await?;
        self.search(RoomVisibility::All, Some(room), input).await
    }

    pub async fn search_all(
        &self,
        actor: &Actor,
        room: Option<RoomId>,
        input: SearchInput,
    ) -> Result<SearchPage, DomainError> {
        if let Some(room) = room {
            return self.search_room(actor, room, input).await;
        }
        let visibility = if actor.is_admin() {
            RoomVisibility::All
        } else {
            RoomVisibility::PublicOrMemberOf(actor.user_id.clone())
        };
        self.search(visibility, None, input).await
    }

    async fn search(
        &self,
        visibility: RoomVisibility,
        room: Option<RoomId>,
        input: SearchInput,
    ) -> Result<SearchPage, DomainError> {
        let terms = SearchTerms::parse(&input.q)?;
        let limit = input.limit.map(Limit::parse).transpose()?.unwrap_or_default();
        // No word to look for, or a time range that ends before it starts:
        // nothing can match.
        let empty_range =
            matches!((input.since, input.until), (Some(since), Some(until)) if since > until);
        if terms.words().is_empty() || empty_range {
            return Ok(SearchPage { items: Vec::new(), next_cursor: None });
        }
        let filter = SearchFilter {
            terms,
            room,
            user: input.user_id,
            since: input.since,
            until: input.until,
            before: input.before,
            limit,
        };
        let mut found = self.search.search(&filter, &visibility).await?;
        let page_size = limit.get() as usize;
        let has_more = found.len() > page_size;
        found.truncate(page_size);
        self.attach_offers(&mut found).await?;
        let next_cursor = if has_more { found.last().map(|m| m.id) } else { None };
        let items = found
            .into_iter()
            .map(|message| SearchHit { snippet: snippet(&message.content, &filter.terms), message })
            .collect();
        Ok(SearchPage { items, next_cursor })
    }
}
