//! A service under test: its HTTP and socket base URLs, its process (for RSS),
//! and the few REST calls the scenarios need to set up.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error("bad target URL {0:?}: expected http://HOST:PORT")]
    BadUrl(String),
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
    #[error("{call} failed: {reason}")]
    Call { call: String, reason: String },
}

/// Which kind of server a target is; the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service,
    Baseline,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Baseline => "baseline",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    /// `http://host:port`, without a trailing slash.
    pub http: String,
    /// `ws://host:port`.
    pub ws: String,
    pub address: SocketAddr,
    /// The server's process, when its memory can be read.
    pub pid: Option<u32>,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<PageItem>,
}

#[derive(Deserialize)]
struct PageItem {
    seq: i64,
}

impl Target {
    pub async fn new(kind: Kind, url: &str, pid: Option<u32>) -> Result<Self, TargetError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| TargetError::BadUrl(url.to_owned()))?;
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return Err(TargetError::BadUrl(url.to_owned()));
        };
        if parsed.scheme() != "http" {
            return Err(TargetError::BadUrl(url.to_owned()));
        }
        let host_port = format!("{host}:{port}");
        let address = tokio::net::lookup_host(&host_port)
            .await
            .map_err(|e| TargetError::Resolve(host_port.clone(), e.to_string()))?
            .next()
            .ok_or_else(|| TargetError::Resolve(host_port.clone(), "no address".to_owned()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| TargetError::Call { call: "HTTP client".into(), reason: e.to_string() })?;
        Ok(Self {
            kind,
            http: format!("http://{host_port}"),
            ws: format!("ws://{host_port}"),
            address,
            pid,
            client,
        })
    }

    /// The same target with its process known (for its RSS).
    pub fn with_pid(self, pid: Option<u32>) -> Self {
        Self { pid, ..self }
    }

    pub fn http_client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `POST /rooms`; `last_seq` is honoured by the baseline only (a room that
    /// pretends to hold that many messages, for history reads).
    pub async fn create_room(&self, name: &str, last_seq: Option<i64>) -> Result<i64, TargetError> {
        let mut body = json!({ "name": name });
        if let Some(last_seq) = last_seq {
            body["last_seq"] = json!(last_seq);
        }
        let call = || format!("POST {}/rooms", self.http);
        let response = self
            .client
            .post(format!("{}/rooms", self.http))
            .header("x-user-id", "bench")
            .json(&body)
            .send()
            .await
            .map_err(|e| TargetError::Call { call: call(), reason: e.to_string() })?;
        if !response.status().is_success() {
            return Err(TargetError::Call { call: call(), reason: response.status().to_string() });
        }
        let created: Created = response
            .json()
            .await
            .map_err(|e| TargetError::Call { call: call(), reason: e.to_string() })?;
        Ok(created.id)
    }

    /// The room's highest seq (0 when empty), from its newest page.
    pub async fn last_seq(&self, room: i64) -> Result<i64, TargetError> {
        let url = format!("{}/rooms/{room}/messages?limit=1", self.http);
        let call = || format!("GET {url}");
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| TargetError::Call { call: call(), reason: e.to_string() })?;
        if !response.status().is_success() {
            return Err(TargetError::Call { call: call(), reason: response.status().to_string() });
        }
        let page: Page = response
            .json()
            .await
            .map_err(|e| TargetError::Call { call: call(), reason: e.to_string() })?;
        Ok(page.items.last().map_or(0, |m| m.seq))
    }
}

impl Target {
    /// The server's resident memory now, in KiB, when its process is known.
    pub fn rss(&self) -> Option<u64> {
        self.pid.and_then(crate::server_memory::rss_kib)
    }
}
