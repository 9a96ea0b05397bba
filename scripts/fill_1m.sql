-- One room holding 1,000,000 messages (seq 1..1,000,000) for `chat-bench history --room ID`
-- (Postgres; run against the service's database after its migrations): psql -f scripts/fill_1m.sql
WITH room AS (
  INSERT INTO rooms (name, is_active, is_private, last_seq, created_at, updated_at)
  VALUES ('history 1M', true, false, 1000000, now(), now()) RETURNING id
)
INSERT INTO messages (room_id, seq, user_id, content, message_type, edited, created_at, updated_at)
SELECT room.id, g, 'seed' || (g % 10), 'history message ' || g || ' ' || md5(g::text), 'text', false,
       now() - (1000000 - g) * interval '1 millisecond', now()
FROM room, generate_series(1, 1000000) AS g;
ANALYZE messages;
SELECT id FROM rooms WHERE name = 'history 1M' ORDER BY id DESC LIMIT 1;
