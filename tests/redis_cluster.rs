//! The service on a Redis Cluster of three masters (`scripts/redis_cluster.sh`,
//! started by `.ci/run`): broadcasts between instances travel over sharded
//! pub/sub spread over the masters, and presence, the socket cap, the shared
//! rate limits and the cache work, although a cluster refuses a script whose
//! keys are in different hash slots (the keys a script uses share a hash tag).

use std::time::{Duration, Instant};

use chat_tests::{TestApp, assert_error, redis_cluster_nodes};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// One command to one node, in RESP; the reply as text: a simple string, an
/// integer or an error as it came, an array as its bulk strings joined by '\n'.
async fn node_command(node: &str, args: &[&str]) -> String {
    let mut stream = tokio::net::TcpStream::connect(node).await.expect("cluster node");
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("reply");
    let line = line.trim_end().to_owned();
    let Some(count) = line.strip_prefix('*') else { return line };
    let mut items = Vec::new();
    for _ in 0..count.parse::<usize>().expect("array length") {
        let mut header = String::new();
        reader.read_line(&mut header).await.expect("bulk header");
        let length: usize = header.trim_end().trim_start_matches('$').parse().expect("bulk length");
        let mut bulk = vec![0; length + 2];
        reader.read_exact(&mut bulk).await.expect("bulk");
        items.push(String::from_utf8_lossy(&bulk[..length]).into_owned());
    }
    items.join("\n")
}

/// The entries of an array reply (none for an empty one).
fn entries(reply: &str) -> Vec<&str> {
    reply.lines().filter(|l| !l.is_empty()).collect()
}

fn nodes_of(app: &TestApp) -> Vec<String> {
    redis_cluster_nodes(app.settings.redis_url.as_deref().expect("a cluster URL"))
}

async fn upgrade_status(app: &TestApp, path: &str) -> u16 {
    match tokio_tungstenite::connect_async(app.ws_url(path)).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// The contents of a room's newest page, oldest first.
async fn contents(app: &TestApp, room: i64) -> Vec<String> {
    let page: Value =
        app.get(&format!("/rooms/{room}/messages?limit=50")).await.json().await.expect("JSON");
    let items = page["items"].as_array().expect("items");
    items.iter().map(|m| m["content"].as_str().unwrap_or("").to_owned()).collect()
}

const ROOMS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_a_cluster_hear_each_other_over_sharded_channels_on_every_master() {
    let Some(a) = TestApp::postgres_with_redis_cluster(|_| {}).await else { return };
    let b = a.another(|_| {}).await;
    let mut listeners = Vec::new();
    for n in 0..ROOMS {
        let room = a.create_room(&format!("Sharded {n}")).await;
        let (bob, _) = b.joined_socket(room, "bob").await;
        listeners.push((room, bob));
    }
    // A posts, B's sockets hear it: the room's channel carried it between them.
    for (room, bob) in &mut listeners {
        let sent = a.post_message(*room, "alice", &format!("to room {room}")).await;
        let heard = bob.next_of_type("message").await;
        assert_eq!(heard["id"], sent["id"], "room {room}");
    }

    // The channels are sharded ones (each on the master of its slot), spread
    // over the masters, and nothing goes over the cluster-wide pub/sub.
    let prefix = &a.settings.redis_key_prefix;
    let pattern = format!("{prefix}*");
    let (mut sharded, mut masters_used) = (0, 0);
    for node in nodes_of(&a) {
        let on_node = node_command(&node, &["PUBSUB", "SHARDCHANNELS", &pattern]).await;
        let on_node = entries(&on_node).len();
        sharded += on_node;
        masters_used += usize::from(on_node > 0);
        let plain = node_command(&node, &["PUBSUB", "CHANNELS", &pattern]).await;
        assert!(entries(&plain).is_empty(), "plain pub/sub used on {node}: {plain}");
    }
    assert_eq!(sharded, ROOMS, "B holds one sharded channel per room");
    assert!(masters_used >= 2, "{ROOMS} rooms' channels all on one master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_the_socket_cap_hold_across_instances_on_a_cluster() {
    let Some(a) = TestApp::postgres_with_redis_cluster(|s| s.ws_max_sockets_per_user = 1).await
    else {
        return;
    };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Present").await;
    let (alice, _) = b.joined_socket(room, "alice").await;

    let users: Value = a.get(&format!("/rooms/{room}/users")).await.json().await.expect("JSON");
    let items = users["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{users}");
    assert_eq!(items[0]["user_id"], "alice");
    assert_eq!(items[0]["connections"], 1);
    let presence: Value = a.get("/users/alice/presence").await.json().await.expect("JSON");
    assert_eq!(presence["connections"], 1, "the user's sockets, read on the other instance");

    let again = format!("/ws/{room}?user_id=alice");
    assert_eq!(upgrade_status(&a, &again).await, 429, "alice's second socket, on A");
    let (mut bob, _) = a.joined_socket(room, "bob").await;

    alice.close().await;
    let left = bob.next_of_type("user_left").await;
    assert_eq!(left["user_id"], "alice");
    let users: Value = a.get(&format!("/rooms/{room}/users")).await.json().await.expect("JSON");
    let ids: Vec<&str> = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["user_id"].as_str())
        .collect();
    assert_eq!(ids, ["bob"], "alice's socket was forgotten");
    // Her slot comes back once B has finished with the socket.
    let deadline = Instant::now() + Duration::from_secs(15);
    while upgrade_status(&a, &again).await != 101 {
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_on_a_cluster_and_keeps_a_rooms_keys_in_one_slot() {
    let Some(app) = TestApp::postgres_with_redis_cluster(|_| {}).await else { return };
    let room = app.create_room("Cached").await;
    for n in 1..=3 {
        app.post_message(room, "alice", &format!("m{n}")).await;
    }
    let first = contents(&app, room).await;
    let hits = app.cache_stats.hits();
    assert_eq!(contents(&app, room).await, first, "the same page from the cache");
    assert!(app.cache_stats.hits() > hits, "the second read was a cache hit");
    let prefix = &app.settings.redis_key_prefix;
    let recent = format!("{prefix}{{room:{room}}}:recent");
    let mut found = 0;
    for node in nodes_of(&app) {
        // The node that owns the slot answers; the others answer MOVED.
        found += usize::from(node_command(&node, &["EXISTS", &recent]).await == ":1");
    }
    assert_eq!(found, 1, "the newest page is cached under {recent}");

    // A new message and an edit reach the cached page (scripts over the room's keys).
    let fourth = app.post_message(room, "alice", "m4").await;
    let edited = app
        .patch(
            &format!("/messages/{}", fourth["id"]),
            json!({"content": "m4 edited", "user_id": "alice"}),
        )
        .await;
    assert_eq!(edited.status(), 200);
    let now = contents(&app, room).await;
    assert_eq!(now.len(), 4, "{now:?}");
    assert!(now.contains(&"m4 edited".to_owned()), "{now:?}");
    let renamed = app.patch(&format!("/rooms/{room}"), json!({"name": "Renamed"})).await;
    assert_eq!(renamed.status(), 200);
    let read: Value = app.get(&format!("/rooms/{room}")).await.json().await.expect("JSON");
    assert_eq!(read["name"], "Renamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_per_address_are_shared_on_a_cluster() {
    let Some(a) = TestApp::postgres_with_redis_cluster(|s| {
        s.rate_limit_http_per_second = 0.001;
        s.rate_limit_http_burst = 3;
    })
    .await
    else {
        return;
    };
    let b = a.another(|_| {}).await;
    for app in [&a, &b, &a] {
        assert_eq!(app.get("/rooms").await.status(), 200);
    }
    assert_error(b.get("/rooms").await, 429, "rate_limited").await;
}
