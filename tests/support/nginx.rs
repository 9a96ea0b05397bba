//! The project's nginx (`deploy/nginx.conf`, run by `scripts/nginx_local.sh`)
//! in front of test instances. Without nginx on the machine the tests that need
//! it are skipped, saying so — or fail, with `CHAT_TEST_REQUIRE_SERVERS=1` (CI
//! installs it).

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::TestApp;

/// A running nginx; dropping it stops it (master and worker).
pub struct Nginx {
    pub port: u16,
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not the SIGKILL of `kill_on_drop`: a killed master leaves
        // its worker running (and holding the test's output open).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            for _ in 0..100 {
                if self.child.try_wait().is_ok_and(|status| status.is_some()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Nginx {
    /// Starts nginx in front of `apps`, or `None` (skipped) when nginx is not
    /// installed and CI did not demand it. Waits until nginx answers.
    pub async fn start(apps: &[&TestApp]) -> Option<Self> {
        if std::process::Command::new("nginx").arg("-v").output().is_err() {
            assert!(
                !super::require_servers(),
                "nginx is not installed (apt-get install nginx-light)"
            );
            super::say_skipped("nginx", "nginx is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("chat-nginx-{}", uuid::Uuid::new_v4().simple()));
        let script: PathBuf =
            [env!("CARGO_MANIFEST_DIR"), "..", "scripts", "nginx_local.sh"].iter().collect();
        let upstreams = apps.iter().map(|app| app.address.trim_start_matches("http://").to_owned());
        let child = Command::new(script)
            .arg(&dir)
            .arg(port.to_string())
            .args(upstreams)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        let nginx = Self { port, child };
        let health = format!("{}/nginx-health", nginx.url());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if reqwest::get(&health).await.is_ok_and(|r| r.status() == 200) {
                return Some(nginx);
            }
            assert!(tokio::time::Instant::now() < deadline, "nginx did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`, nginx's address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
