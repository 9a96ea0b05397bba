//! Lua scripts sent by their hash (`EVALSHA`): the text goes to Redis once
//! (again after a restart, on `NOSCRIPT`), not with every call, and Redis does
//! not hash it again each time.

use fred::prelude::*;
use fred::types::MultipleValues;
use fred::types::scripts::Script;

pub(crate) struct LuaScript(Script);

impl LuaScript {
    pub(crate) fn new(lua: impl Into<String>) -> Self {
        Self(Script::from_lua(lua.into()))
    }

    pub(crate) async fn run<R, V>(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: V,
    ) -> Result<R, Error>
    where
        R: FromValue,
        V: TryInto<MultipleValues> + Send,
        V::Error: Into<Error> + Send,
    {
        self.0.evalsha_with_reload(client, keys, args).await
    }
}
