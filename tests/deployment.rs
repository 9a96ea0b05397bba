//! The deployment files against the code (no Docker engine needed): the
//! compose file's chat-room replicas set only settings the service reads, all of
//! docs/PROTOCOL.md's settings among them, and those values load as the service
//! would load them; the README documents exactly the settings the service reads; `.env.prod.example` documents every variable the compose file
//! interpolates and nothing else; the stack has what issue 7 asks for (health
//! checks, volumes, migrations once, two replicas behind nginx passing
//! WebSocket upgrades); the Dockerfile is multi-stage, cached, locked, non-root
//! and health-checked — and its health check command works.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chat_api::settings::{AppEnv, AuthMode};
use chat_tests::TestApp;
use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// The environment variable names the service reads: the fields of `Settings`
/// (the config crate maps `DATABASE_URL` to `database_url`) and the variables
/// the settings loader reads itself.
fn settings_names() -> BTreeSet<String> {
    let model = repo_file("crates/api/src/settings/model.rs");
    let body = model.split("pub struct Settings {").nth(1).expect("struct Settings");
    let body = body.split("\n}").next().expect("end of Settings");
    let mut names: BTreeSet<String> = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|field| field.split(':').next())
        .map(str::to_uppercase)
        .collect();
    let loader = repo_file("crates/api/src/settings/load.rs");
    for quoted in loader.split("var(\"").skip(1) {
        names.insert(quoted.split('"').next().expect("name").to_owned());
    }
    assert!(names.len() > 20 && names.contains("DATABASE_URL"), "settings found: {names:?}");
    names
}

/// The variable names in the first column of the table under `heading` in a
/// repository file (`| `HOST`, `PORT` | … |`).
fn table_names(path: &str, heading: &str) -> BTreeSet<String> {
    let text = repo_file(path);
    let section = text
        .split(&format!("\n{heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("{path} has a {heading:?} section"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let names: BTreeSet<String> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('|').nth(1))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
        .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    assert!(names.len() > 10, "{path} {heading}: {names:?}");
    names
}

/// The settings GrainTrade's deployments rely on by name (docs/PROTOCOL.md,
/// "Settings"): every replica sets each of them explicitly.
fn contract_settings() -> BTreeSet<String> {
    table_names("docs/PROTOCOL.md", "## Settings")
}

#[test]
fn the_readme_documents_every_setting_and_the_protocol_names_only_real_ones() {
    let known = settings_names();
    let readme = table_names("README.md", "## Settings");
    let undocumented: Vec<&String> = known.difference(&readme).collect();
    assert!(undocumented.is_empty(), "README's Settings table leaves out {undocumented:?}");
    let unknown: Vec<&String> = readme.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "README's Settings table lists what the service never reads: {unknown:?}"
    );
    let contract = contract_settings();
    let unread: Vec<&String> = contract.difference(&known).collect();
    assert!(
        unread.is_empty(),
        "docs/PROTOCOL.md names settings the service does not read: {unread:?}"
    );
}

/// `docker-compose.yaml`, with `<<` merge keys applied.
fn compose() -> Yaml {
    let docs = YamlLoader::load_from_str(&repo_file("docker-compose.yaml")).expect("valid YAML");
    merge_keys(docs.into_iter().next().expect("one document"))
}

fn merge_keys(value: Yaml) -> Yaml {
    match value {
        Yaml::Hash(hash) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            let merge = Yaml::String("<<".to_owned());
            if let Some(Yaml::Hash(base)) = hash.get(&merge).cloned().map(merge_keys) {
                out.extend(base);
            }
            for (key, value) in hash {
                if key != merge {
                    out.insert(key, merge_keys(value));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A service's `environment`, as a map or as a list of `KEY=VALUE`.
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Hash(hash) => hash.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Yaml::Array(items) => items
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Yaml::BadValue => BTreeMap::new(),
        other => panic!("environment: {other:?}"),
    }
}

fn strings(value: &Yaml) -> Vec<String> {
    match value {
        Yaml::Array(items) => items.iter().map(scalar).collect(),
        Yaml::BadValue => Vec::new(),
        other => vec![scalar(other)],
    }
}

fn services(compose: &Yaml) -> Vec<(String, Yaml)> {
    compose["services"]
        .as_hash()
        .expect("services")
        .iter()
        .map(|(name, service)| (scalar(name), service.clone()))
        .collect()
}

fn is_chat_room_image(service: &Yaml) -> bool {
    service["image"].as_str().is_some_and(|image| image.starts_with("graintrade/chat-room"))
}

/// A chat-room replica: the image run with its default command (serve).
fn is_replica(service: &Yaml) -> bool {
    is_chat_room_image(service)
        && strings(&service["entrypoint"]).is_empty()
        && strings(&service["command"]).is_empty()
}

fn depends_on(service: &Yaml, name: &str) -> Option<String> {
    service["depends_on"][name]["condition"].as_str().map(str::to_owned)
}

/// `.env.prod.example`: the variables it sets and those it shows commented out.
fn env_example() -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut set = BTreeMap::new();
    let mut documented = BTreeSet::new();
    for line in repo_file(".env.prod.example").lines() {
        let line = line.trim();
        let (commented, assignment) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let Some((name, value)) = assignment.split_once('=') else { continue };
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        documented.insert(name.to_owned());
        if !commented {
            set.insert(name.to_owned(), value.to_owned());
        }
    }
    (set, documented)
}

/// The variables a compose text interpolates (`${NAME}`, `${NAME:-x}`, `${NAME:?x}`).
fn interpolated(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .map(|rest| {
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .collect()
}

/// Compose's interpolation of `value` with `vars` (defaults and required markers).
fn interpolate(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let expression = &rest[start + 2..end];
        let (name, fallback) = if let Some((name, default)) = expression.split_once(":-") {
            (name, Some(default))
        } else if let Some((name, _)) = expression.split_once(":?") {
            (name, None)
        } else {
            (expression, Some(""))
        };
        match (vars.get(name).filter(|v| !v.is_empty()), fallback) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => panic!("{name} is required by docker-compose.yaml but not set"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_replicas_set_only_settings_the_service_reads() {
    let compose = compose();
    let known = settings_names();
    let contract = contract_settings();
    let replicas: Vec<(String, Yaml)> =
        services(&compose).into_iter().filter(|(_, s)| is_replica(s)).collect();
    assert_eq!(
        replicas.len(),
        2,
        "two chat-room replicas: {:?}",
        replicas.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    for (name, service) in &replicas {
        let env = environment(service);
        let unknown: Vec<&String> = env.keys().filter(|k| !known.contains(*k)).collect();
        assert!(unknown.is_empty(), "{name} sets variables the service does not read: {unknown:?}");
        let missing: Vec<&String> = contract.iter().filter(|k| !env.contains_key(*k)).collect();
        assert!(missing.is_empty(), "{name} leaves out PROTOCOL.md's settings: {missing:?}");
        assert_eq!(
            env["RUN_MIGRATIONS"], "false",
            "{name}: migrations are the migrate service's job"
        );
        assert_eq!(env["APP_ENV"], "production", "{name}");
        assert_eq!(
            depends_on(service, "migrate").as_deref(),
            Some("service_completed_successfully"),
            "{name} starts after the migrations ran"
        );
        for dependency in ["postgres", "redis", "rabbitmq"] {
            assert_eq!(
                depends_on(service, dependency).as_deref(),
                Some("service_healthy"),
                "{name} waits for {dependency}"
            );
        }
    }
}

#[test]
fn compose_values_load_as_production_settings() {
    let compose = compose();
    let (example, _) = env_example();
    let (_, replica) =
        services(&compose).into_iter().find(|(_, s)| is_replica(s)).expect("a replica");
    let vars: Vec<(String, String)> =
        environment(&replica).into_iter().map(|(k, v)| (k, interpolate(&v, &example))).collect();
    let settings = chat_api::settings::from_vars(vars).expect("the replicas' settings load");
    assert_eq!(settings.app_env, AppEnv::Production);
    assert_eq!(settings.port, 8001);
    assert!(!settings.run_migrations);
    assert_eq!(settings.effective_auth_mode(), AuthMode::Required);
    assert!(settings.database_url.starts_with("postgres://chat:"), "{}", settings.database_url);
    assert_eq!(settings.redis_url.as_deref(), Some("redis://redis:6379/0"));
    assert!(settings.rabbitmq_url.as_deref().is_some_and(|u| u.starts_with("amqp://chat:")));
    assert_eq!(settings.cors_origin_list(), Some(vec!["https://graintrade.example".to_owned()]));
    chat_api::auth::TokenVerifier::from_settings(&settings)
        .expect("production start-up finds its JWT key");
}

#[test]
fn env_example_documents_exactly_what_compose_interpolates() {
    let text = repo_file("docker-compose.yaml");
    let used = interpolated(&text);
    let (_, documented) = env_example();
    let undocumented: Vec<&String> = used.difference(&documented).collect();
    assert!(undocumented.is_empty(), ".env.prod.example leaves out {undocumented:?}");
    let unused: Vec<&String> = documented.difference(&used).collect();
    assert!(unused.is_empty(), ".env.prod.example sets variables nothing reads: {unused:?}");
    // A setting passed through keeps its name, so the operator's LOG_LEVEL is LOG_LEVEL.
    let known = settings_names();
    let compose = compose();
    let (_, replica) =
        services(&compose).into_iter().find(|(_, s)| is_replica(s)).expect("a replica");
    for (key, value) in environment(&replica) {
        for name in interpolated(&value) {
            if known.contains(&name) {
                assert_eq!(name, key, "{key} takes its value from {name}");
            }
        }
    }
}

#[test]
fn compose_runs_migrations_once_and_keeps_data_in_volumes() {
    let compose = compose();
    let all = services(&compose);
    let migrate: Vec<&(String, Yaml)> =
        all.iter().filter(|(_, s)| strings(&s["command"]) == ["migrate", "up"]).collect();
    assert_eq!(migrate.len(), 1, "one migration service");
    let (_, migrate) = migrate[0];
    assert!(is_chat_room_image(migrate), "it runs the image's own `chat-room migrate up`");
    assert!(strings(&migrate["entrypoint"]).is_empty(), "through the image's entrypoint");
    assert_eq!(migrate["restart"].as_str(), Some("no"), "it runs once");
    let env = environment(migrate);
    let known = settings_names();
    assert!(env.contains_key("DATABASE_URL"), "it migrates the replicas' database");
    assert!(env.keys().all(|k| known.contains(k)), "it sets only settings: {env:?}");
    let (example, _) = env_example();
    let vars = env.iter().map(|(k, v)| (k.clone(), interpolate(v, &example)));
    let settings = chat_api::settings::from_vars(vars).expect("its settings load");
    let (_, replica) = all.iter().find(|(_, s)| is_replica(s)).expect("a replica");
    assert_eq!(
        interpolate(&environment(migrate)["DATABASE_URL"], &example),
        interpolate(&environment(replica)["DATABASE_URL"], &example),
        "the same database as the replicas"
    );
    assert!(settings.database_url.starts_with("postgres://"), "{}", settings.database_url);
    assert_eq!(depends_on(migrate, "postgres").as_deref(), Some("service_healthy"));

    let volumes = compose["volumes"].as_hash().expect("named volumes");
    for name in ["postgres", "redis", "rabbitmq"] {
        let service = &compose["services"][name];
        assert!(!strings(&service["healthcheck"]["test"]).is_empty(), "{name} has a health check");
        let mounts = strings(&service["volumes"]);
        assert!(!mounts.is_empty(), "{name} keeps its data in a volume");
        for mount in mounts {
            let source = mount.split(':').next().unwrap_or_default();
            assert!(
                volumes.contains_key(&Yaml::String(source.to_owned())),
                "{name}: volume {source} is declared"
            );
        }
    }
}

#[test]
fn nginx_balances_both_replicas_and_passes_websocket_upgrades() {
    let compose = compose();
    let nginx = &compose["services"]["nginx"];
    assert!(strings(&nginx["ports"]).iter().any(|p| p.ends_with(":8001")), "published on 8001");
    let config_mount = strings(&nginx["volumes"])
        .into_iter()
        .find(|v| v.contains("nginx.conf"))
        .expect("nginx.conf mounted");
    let config =
        repo_file(config_mount.split(':').next().unwrap_or_default().trim_start_matches("./"));
    let upstream = config
        .split("upstream chat_room {")
        .nth(1)
        .expect("upstream")
        .split('}')
        .next()
        .unwrap_or_default();
    for replica in ["chat-room-1", "chat-room-2"] {
        assert!(upstream.contains(&format!("server {replica}:8001")), "{replica} is upstream");
        assert_eq!(depends_on(nginx, replica).as_deref(), Some("service_healthy"));
    }
    for line in [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        // With its port: the service's own page passes the socket Origin check.
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Request-Id $chat_request_id;",
    ] {
        assert!(config.contains(line), "nginx.conf has {line}");
    }
}

#[test]
fn dockerfile_is_multi_stage_cached_locked_and_non_root() {
    let dockerfile = repo_file("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("FROM "))
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "multi-stage");
    let position = |needle: &str| instructions.iter().position(|l| l.contains(needle));
    let cook = position("cargo chef cook").expect("dependencies are built on their own");
    let sources = instructions
        .iter()
        .enumerate()
        .skip(cook)
        .find(|(_, l)| l.starts_with("COPY . ."))
        .map(|(i, _)| i);
    assert!(sources.is_some_and(|s| s > cook), "the sources come after the dependency layer");
    assert!(
        instructions.iter().any(|l| l.contains("cargo build --release --locked")),
        "--locked release build"
    );
    let runtime = &instructions[*stages.last().expect("a stage")..];
    assert!(runtime[0].contains("-slim"), "small runtime image: {}", runtime[0]);
    let user = runtime.iter().find_map(|l| l.strip_prefix("USER ")).expect("a USER");
    assert!(!user.starts_with("root") && !user.starts_with("0"), "non-root user: {user}");
    assert!(runtime.iter().any(
        |l| l.starts_with("HEALTHCHECK") || l.contains("CMD [\"chat-room\", \"healthcheck\"]")
    ));
    assert!(
        dockerfile.contains("CMD [\"chat-room\", \"healthcheck\"]"),
        "health-checked by the binary itself"
    );
    assert!(runtime.contains(&"EXPOSE 8001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_health_check_reports_the_service() {
    let app = TestApp::sqlite().await;
    let port: u16 = app.address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let healthy = tokio::task::spawn_blocking(move || chat_api::healthcheck::is_healthy(address));
    assert!(healthy.await.expect("probe runs"), "a running service is healthy");
    app.shutdown().await;
    let after = tokio::task::spawn_blocking(move || chat_api::healthcheck::is_healthy(address));
    assert!(!after.await.expect("probe runs"), "a stopped service is not");
}
