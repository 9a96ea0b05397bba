// GrainTrade Chat, the built-in page: a reference client for docs/PROTOCOL.md.
// REST for rooms, history pages, edits and search; ONE WebSocket, the inbox
// socket `/ws`, for everything live: the user's rooms (unread counts, new and
// removed rooms) and the open room's frames, which it subscribes to with
// `since` = the last seq shown, so a redial misses nothing. User content reaches
// the DOM only as text; the server's error texts are for developers, the page
// says its own.
'use strict';

(() => {
  const PAGE = 50;
  const SEARCH_PAGE = 20;
  const TYPING_SEND_EVERY_MS = 3000;
  const TYPING_SHOWN_FOR_MS = 5000;
  const PING_EVERY_MS = 25000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const NEAR_EDGE_PX = 120;
  const MAX_CONTENT_CHARS = 4000;
  const ROOMS_REFRESH_MS = 10000;
  const READ_DELAY_MS = 250;
  const ROLES = ['moderator', 'admin'];
  /** The reaction keys offered on every message; others show once someone uses them. */
  const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];

  const $ = (id) => document.getElementById(id);

  /** An element whose text, if any, is set as text: never parsed as HTML. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  const state = {
    auth: null, // 'disabled' | 'required', from the server's answer to an anonymous call
    user: null, // the name (auth disabled) or the token's `sub`
    token: null,
    roles: [], // 'moderator' / 'admin': the token's, or declared in development

    rooms: new Map(), // id -> room: the public rooms (GET /rooms), for browsing
    inbox: new Map(), // id -> entry: the user's rooms (GET /me/rooms), see inboxEntry()
    inboxKnown: false, // false until /me/rooms answered (an older server has no inbox)
    roomsShown: null, // what the room lists show now, see renderRooms()
    room: null, // the open room, see openRoom()
    sock: null, // the inbox socket, see connect()
  };

  // ---- REST ----------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** What the page says about a failed call: the server's `message` names fields
   * and rules for developers ("q: must contain…"), so users get the page's own words. */
  const FIELD_HINTS = {
    name: 'A room name is 1 to 100 characters.',
    description: 'A description is at most 1000 characters.',
    content: `A message is 1 to ${MAX_CONTENT_CHARS} characters and not only spaces.`,
    q: 'Search for at least one letter or digit.',
    user_id: 'A name is 1 to 64 characters, with no control characters.',
  };

  function explain(error, doing) {
    const status = error.status;
    if (status === 0) return 'Cannot reach the server: check the connection and try again.';
    if (status === 401) return 'The server no longer accepts your sign-in: sign in again.';
    if (status === 403) return `You are not allowed to ${doing}.`;
    if (status === 404) return 'That no longer exists.';
    if (status === 409) return 'That changed meanwhile: reload the page and try again.';
    if (status === 413) return 'That is too long.';
    if (status === 429) return 'Too many requests at once: wait a moment and try again.';
    if (status >= 500) return `The server could not ${doing} just now: try again in a moment.`;
    const field = /^(\w+):/.exec(error.message || '');
    return (field && FIELD_HINTS[field[1]]) || `The server did not accept that (${doing}).`;
  }

  /** The same for an `error` frame, by its code. */
  function explainFrame(frame) {
    switch (frame.code) {
      case 'validation_failed': return explain({ status: 422, message: frame.message }, 'send that');
      case 'forbidden': return 'You are not allowed to post in this room.';
      case 'rate_limited': return 'You are sending too fast: wait a moment.';
      case 'unavailable': return 'The server could not store that just now: try again in a moment.';
      default: return 'The server did not understand what this page sent: reload the page.';
    }
  }

  const isModerator = () => state.roles.includes('moderator') || state.roles.includes('admin');
  const isAdmin = () => state.roles.includes('admin');

  /** Header values must be ASCII; other names go in `?user_id=`, which the server also reads. */
  const ASCII_NAME = /^[\x20-\x7e]+$/;

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    let url = path;
    if (state.token) {
      headers.Authorization = `Bearer ${state.token}`;
    } else if (state.user && ASCII_NAME.test(state.user)) {
      headers['X-User-Id'] = state.user;
    } else if (state.user) {
      url += `${path.includes('?') ? '&' : '?'}user_id=${encodeURIComponent(state.user)}`;
    }
    // Development mode trusts declared roles, as it trusts the declared name.
    if (!state.token && state.roles.length) headers['X-User-Roles'] = state.roles.join(',');
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, 'network', 'cannot reach the server');
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      if (response.status === 401 && state.token) {
        signOut('The server refused the token (invalid or expired): paste a new one.');
      }
      throw new ApiError(response.status, error.code || `http_${response.status}`,
        error.message || response.statusText || 'request failed');
    }
    return data;
  }

  // ---- signing in ----------------------------------------------------------

  async function probeAuthMode() {
    try {
      const response = await fetch('/rooms?limit=1', { cache: 'no-store' });
      return response.status === 401 ? 'required' : 'disabled';
    } catch {
      return null;
    }
  }

  /** The token's `sub` and `roles`, for showing who you are and which buttons
   * apply; the server decides, not this. */
  function tokenClaims(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return {
        sub: typeof claims.sub === 'string' ? claims.sub : null,
        roles: Array.isArray(claims.roles) ? claims.roles.filter((r) => ROLES.includes(r)) : [],
      };
    } catch {
      return { sub: null, roles: [] };
    }
  }

  function validName(raw) {
    const name = raw.trim();
    if (!name) return [null, 'Please enter a name.'];
    if ([...name].length > 64) return [null, 'A name is at most 64 characters.'];
    if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return [null, 'A name cannot contain control characters.'];
    return [name, null];
  }

  async function init() {
    wireEvents();
    state.auth = await probeAuthMode();
    if (!state.auth) {
      $('login-mode').textContent = 'Cannot reach the server. Reload the page to try again.';
      $('login-submit').disabled = true;
      return;
    }
    const required = state.auth === 'required';
    $('login-user-field').hidden = required;
    $('login-role-field').hidden = required;
    $('login-token-field').hidden = !required;
    if (required) {
      const command = el('code', null, 'chat-room token --sub NAME');
      $('login-mode').replaceChildren(
        'This server requires a token. Paste a JWT issued for you (an operator can make one with ',
        command, ').');
    } else {
      $('login-mode').textContent = 'Development mode: pick any name — no password needed.';
    }
    const storedToken = sessionStorage.getItem('chat.token');
    const storedUser = localStorage.getItem('chat.user');
    const storedRole = localStorage.getItem('chat.role') || '';
    if (required && storedToken) {
      await signIn({ token: storedToken });
    } else if (!required && storedUser) {
      $('login-role').value = ROLES.includes(storedRole) ? storedRole : '';
      await signIn({ user: storedUser, role: storedRole });
    } else {
      showLogin();
    }
  }

  async function signIn({ user, token, role }) {
    state.token = token || null;
    const claims = token ? tokenClaims(token) : null;
    state.user = token ? claims.sub || 'you' : user;
    state.roles = token ? claims.roles : ROLES.filter((r) => r === role);
    try {
      await Promise.all([loadRooms(), loadInbox()]);
    } catch (error) {
      state.token = null;
      state.user = null;
      state.roles = [];
      showLogin(error.status === 401 ? 'The server refused this token.' : explain(error, 'sign you in'));
      return;
    }
    if (token) {
      sessionStorage.setItem('chat.token', token);
    } else {
      localStorage.setItem('chat.user', user);
      localStorage.setItem('chat.role', state.roles[0] || '');
    }
    $('login').hidden = true;
    $('app').hidden = false;
    $('whoami').textContent = state.user;
    $('whoami').title = state.roles.length ? `${state.user} (${state.roles.join(', ')})` : state.user;
    $('whoami-role').textContent = state.roles.join(', ');
    $('whoami-role').hidden = !state.roles.length;
    $('whoami').hidden = false;
    $('logout').hidden = false;
    startRoomsRefresh();
    connect();
    route();
  }

  function signOut(reason) {
    closeRoom();
    disconnect();
    sessionStorage.removeItem('chat.token');
    localStorage.removeItem('chat.user');
    localStorage.removeItem('chat.role');
    state.token = null;
    state.user = null;
    state.roles = [];
    state.rooms.clear();
    state.inbox.clear();
    state.inboxKnown = false;
    clearInterval(state.roomsTimer);
    renderRooms();
    showLogin(reason);
  }

  function showLogin(error) {
    document.body.dataset.view = 'login';
    $('app').hidden = true;
    $('login').hidden = false;
    $('whoami').hidden = true;
    $('whoami-role').hidden = true;
    $('logout').hidden = true;
    $('login-error').textContent = error || '';
    const field = state.auth === 'required' ? $('login-token') : $('login-user');
    field.focus();
  }

  // ---- rooms ---------------------------------------------------------------

  /** The public rooms, for browsing: those not in the inbox are listed under it. */
  async function loadRooms() {
    const rooms = [];
    let cursor = null;
    for (let page = 0; page < 10; page += 1) {
      const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const result = await api('GET', `/rooms?limit=100${query}`);
      rooms.push(...result.items);
      cursor = result.next_cursor;
      if (!cursor) break;
    }
    state.rooms = new Map(rooms.map((room) => [room.id, room]));
    renderRooms();
  }

  /** One room of the inbox. `lastSeq` is the newest seq known from any source
   * (the list, a message, an `unread` frame), so an older answer never wins. */
  function inboxEntry(item) {
    const last = item.last_message || null;
    return {
      room: item.room,
      lastMessage: last,
      unread: item.unread || 0,
      lastReadSeq: item.last_read_seq || 0,
      lastSeq: last ? last.seq : 0,
      activity: Date.parse(last ? last.created_at : item.room.created_at) || 0,
      preview: null, // the newest-message fetch on its way, see refreshPreview()
    };
  }

  /** The user's rooms with unread counts and last messages, most recent first.
   * The socket keeps them current; this is the starting point (and the catch-up
   * after a redial, when frames may have been missed). */
  async function loadInbox() {
    const items = [];
    let cursor = null;
    try {
      for (let page = 0; page < 10; page += 1) {
        const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const result = await api('GET', `/me/rooms?limit=100${query}`);
        items.push(...result.items);
        cursor = result.next_cursor;
        if (!cursor) break;
      }
    } catch (error) {
      // A server without read markers yet: no inbox, the public list still works.
      if (error.status === 404 && !state.inboxKnown) {
        renderRooms();
        return;
      }
      throw error;
    }
    state.inboxKnown = true;
    const next = new Map();
    for (const item of items) {
      const entry = inboxEntry(item);
      const known = state.inbox.get(entry.room.id);
      // A frame newer than this answer already moved the count on: keep it.
      if (known && known.lastSeq > entry.lastSeq) {
        entry.unread = known.unread;
        entry.lastSeq = known.lastSeq;
        entry.lastMessage = known.lastMessage;
        entry.activity = Math.max(entry.activity, known.activity);
      }
      next.set(entry.room.id, entry);
    }
    state.inbox = next;
    if (state.room && next.has(state.room.id)) {
      const room = state.room;
      room.readSent = Math.max(room.readSent, next.get(room.id).lastReadSeq);
    }
    renderRooms();
  }

  /** Several triggers at once (a burst of `unread` frames of new rooms) make one call. */
  function reloadInboxSoon() {
    if (state.inboxTimer) return;
    state.inboxTimer = setTimeout(() => {
      state.inboxTimer = null;
      if (state.user || state.token) loadInbox().catch(() => {});
    }, 200);
  }

  /** Public rooms others create are not the user's, so no frame announces them:
   * that list is polled, only while the page is in view. */
  function startRoomsRefresh() {
    clearInterval(state.roomsTimer);
    state.roomsTimer = setInterval(() => {
      if (document.visibilityState === 'visible' && (state.user || state.token)) {
        loadRooms().catch(() => {});
      }
    }, ROOMS_REFRESH_MS);
  }

  /** What a room is called, from whichever list knows it. */
  function roomInfo(id) {
    const entry = state.inbox.get(id);
    return entry ? entry.room : state.rooms.get(id) || null;
  }

  /** The open room, shown and at its newest message, counts as read: its badge
   * would only flash between a message and the read marker that follows it. */
  function readingNow(id) {
    const room = state.room;
    return Boolean(room && room.id === id && pageInView() && roomInView() && nearBottom());
  }

  function renderRooms() {
    const open = state.room ? state.room.id : null;
    const entries = [...state.inbox.values()].sort((a, b) => b.activity - a.activity || b.room.id - a.room.id);
    const others = [...state.rooms.values()].filter((room) => !state.inbox.has(room.id));
    // Most frames change nothing shown: then the nodes stay (and any focus or hover on them).
    const shown = JSON.stringify([open, state.user, entries.map((e) => [e.room, e.lastMessage, readingNow(e.room.id) ? 0 : e.unread]), others]);
    if (shown !== state.roomsShown) {
      state.roomsShown = shown;
      $('room-list').replaceChildren(...entries.map((entry) => inboxItem(entry, open)));
      $('public-list').replaceChildren(...others.map((room) => publicItem(room, open)));
    }
    // Without an inbox (a server older than read markers) every room is in one list.
    $('inbox-head').hidden = !state.inboxKnown;
    $('rooms-empty').hidden = !state.inboxKnown || entries.length > 0;
    $('public-head').textContent = state.inboxKnown ? 'Public rooms' : 'Rooms';
    $('public-head').hidden = state.inboxKnown && others.length === 0;
    $('public-empty').hidden = state.inboxKnown || others.length > 0;
    // The tab's title counts the unread messages of every room.
    const total = entries.reduce((sum, entry) => sum + (readingNow(entry.room.id) ? 0 : entry.unread), 0);
    const name = state.room ? `${roomTitle(state.room)} · GrainTrade Chat` : 'GrainTrade Chat';
    document.title = total ? `(${total}) ${name}` : name;
  }

  function roomLink(room, open) {
    const link = el('a');
    link.href = `#/rooms/${room.id}`;
    if (room.description) link.title = room.description;
    if (room.id === open) link.setAttribute('aria-current', 'page');
    return link;
  }

  function inboxItem(entry, open) {
    const { room } = entry;
    const li = el('li', 'inbox-item');
    li.dataset.roomId = String(room.id);
    if (room.id === open) li.classList.add('active');
    const unread = readingNow(room.id) ? 0 : entry.unread;
    if (unread) li.classList.add('unread');
    const link = roomLink(room, open);
    const top = el('span', 'room-line');
    top.append(el('span', 'room-name', room.name));
    if (room.is_private) top.append(el('span', 'room-private', 'private'));
    const last = entry.lastMessage;
    if (last) {
      const time = el('time', 'room-time', formatTime(last.created_at));
      time.dateTime = last.created_at;
      top.append(time);
    }
    const bottom = el('span', 'room-line');
    const preview = last ? `${last.user_id === state.user ? 'You' : last.user_id}: ${last.content}` : 'No messages yet';
    bottom.append(el('span', 'room-last', preview));
    if (unread) {
      const badge = el('span', 'badge', unread > 99 ? '99+' : String(unread));
      badge.setAttribute('aria-label', `${unread} unread`);
      bottom.append(badge);
    }
    link.append(top, bottom);
    li.append(link);
    return li;
  }

  function publicItem(room, open) {
    const li = el('li');
    li.dataset.roomId = String(room.id);
    if (room.id === open) li.classList.add('active');
    const link = roomLink(room, open);
    link.append(el('span', 'room-name', room.name));
    li.append(link);
    return li;
  }

  // ---- inbox frames ----------------------------------------------------------

  /** `room_added`: created by or for the user, or the user was made a member. */
  function onRoomAdded(frame) {
    const { room } = frame;
    if (!room || state.inbox.has(room.id)) return;
    state.inbox.set(room.id, inboxEntry({ room, last_message: null, last_read_seq: 0, unread: 0 }));
    renderRooms();
  }

  /** `room_removed`: deleted, or the user was taken out of it. The server ended the
   * subscription too (a `room_deleted` queued before may never come): an open room
   * the user may still read is subscribed again (a public room), one it may not is
   * left with a notice (see onSubscribeRefused). */
  function onRoomRemoved(frame) {
    state.inbox.delete(frame.room_id);
    // Deleted, or private and no longer ours: out of the public list too, until
    // the list (read again now) says it is still there.
    state.rooms.delete(frame.room_id);
    loadRooms().catch(() => {});
    renderRooms();
    const room = state.room;
    if (room && room.id === frame.room_id && !room.closed) {
      room.subscribed = false;
      room.removed = true;
      subscribe(room);
    }
  }

  /** `unread`: the count of one of the user's rooms changed (a message of someone
   * else, a deletion, a read on another device). */
  function onUnread(frame) {
    const entry = state.inbox.get(frame.room_id);
    if (!entry) {
      // Posting in a room makes it the user's: the list says more than the frame.
      reloadInboxSoon();
      return;
    }
    const newer = frame.last_seq > entry.lastSeq;
    const fewer = frame.unread < entry.unread;
    entry.unread = frame.unread;
    if (newer) {
      entry.lastSeq = frame.last_seq;
      entry.activity = Math.max(entry.activity, Date.now());
    }
    const open = state.room && state.room.id === entry.room.id && state.room.subscribed;
    // The open room's frames bring its messages; other rooms' last message is fetched.
    if (!open && (newer || fewer)) refreshPreview(entry);
    renderRooms();
    if (state.room && state.room.id === entry.room.id && frame.unread > 0) markReadSoon(state.room);
  }

  /** The newest message of a room this page does not follow, for its line in the list. */
  async function refreshPreview(entry) {
    if (entry.preview) {
      entry.previewAgain = true;
      return;
    }
    entry.preview = api('GET', `/rooms/${entry.room.id}/messages?limit=1`);
    try {
      const page = await entry.preview;
      const last = page.items[page.items.length - 1] || null;
      if (state.inbox.get(entry.room.id) === entry) {
        entry.lastMessage = last;
        if (last) {
          entry.lastSeq = Math.max(entry.lastSeq, last.seq);
          entry.activity = Math.max(entry.activity, Date.parse(last.created_at) || 0);
        }
        renderRooms();
      }
    } catch {
      // The count is right without it; the next frame or reload tries again.
    } finally {
      entry.preview = null;
      if (entry.previewAgain) {
        entry.previewAgain = false;
        refreshPreview(entry);
      }
    }
  }

  /** A message of the open room: its line in the list follows without a fetch. */
  function noteLastMessage(message) {
    const entry = state.inbox.get(message.room_id);
    if (!entry) return;
    if (entry.lastMessage && entry.lastMessage.seq > message.seq) return;
    entry.lastMessage = message;
    entry.lastSeq = Math.max(entry.lastSeq, message.seq);
    entry.activity = Math.max(entry.activity, Date.parse(message.created_at) || 0);
    renderRooms();
  }

  /** An edit or deletion of the open room: the line changes when it was the last message. */
  function noteChangedMessage(roomId, id, updated) {
    const entry = state.inbox.get(roomId);
    if (!entry || !entry.lastMessage || entry.lastMessage.id !== id) return;
    if (updated) {
      entry.lastMessage = { ...entry.lastMessage, ...updated };
      renderRooms();
    } else {
      refreshPreview(entry);
    }
  }

  /** Names typed into the new-room form: comma- or space-separated. */
  function parseMembers(raw) {
    const names = raw.split(/[,\s]+/).map((name) => name.trim()).filter(Boolean);
    return [...new Set(names)].filter((name) => name !== state.user);
  }

  async function createRoom(event) {
    event.preventDefault();
    const input = $('new-room-name');
    const name = input.value.trim();
    $('rooms-error').textContent = '';
    if (!name) return;
    const members = parseMembers($('new-room-members').value);
    const body = { name };
    if (members.length) body.members = members;
    if ($('new-room-private').checked) body.is_private = true;
    try {
      const room = await api('POST', '/rooms', body);
      input.value = '';
      $('new-room-members').value = '';
      $('new-room-private').checked = false;
      if (!room.is_private) state.rooms.set(room.id, room);
      // The creator's room_added frame says the same; whichever comes first adds it.
      onRoomAdded({ room });
      renderRooms();
      location.hash = `#/rooms/${room.id}`;
    } catch (error) {
      $('rooms-error').textContent = explain(error, 'create a room');
    }
  }

  /** A destructive button asks once more, in place, instead of a dialog. */
  function confirmClick(button, label, action) {
    if (button.classList.contains('confirming')) {
      clearTimeout(button.confirmTimer);
      button.classList.remove('confirming');
      button.textContent = label;
      action();
      return;
    }
    button.classList.add('confirming');
    button.textContent = 'Sure?';
    button.confirmTimer = setTimeout(() => {
      button.classList.remove('confirming');
      button.textContent = label;
    }, 4000);
  }

  async function deleteRoom() {
    const room = state.room;
    if (!room) return;
    try {
      await api('DELETE', `/rooms/${room.id}`);
      roomGone(room, `Room “${roomTitle(room)}” was deleted.`);
    } catch (error) {
      $('composer-error').textContent = explain(error, 'delete this room');
    }
  }

  /** The open room no longer exists (or is closed to us): leave it and say why. */
  function roomGone(room, notice) {
    state.rooms.delete(room.id);
    state.inbox.delete(room.id);
    if (state.room === room) {
      closeRoom();
      showNotice(notice);
      history.replaceState(null, '', '#/');
      setView('rooms');
    }
    renderRooms();
  }

  /** Says what happened where it is seen on every screen size: above the room list. */
  function showNotice(text) {
    $('rooms-notice').textContent = text || '';
    $('rooms-notice').hidden = !text;
  }

  // ---- navigation ----------------------------------------------------------

  function setView(view) {
    document.body.dataset.view = view;
    if (state.room) markReadSoon(state.room);
    renderRooms();
  }

  /** Whether the open room is on screen: on a phone the list replaces it. */
  function roomInView() {
    return document.body.dataset.view === 'room' || window.matchMedia('(min-width: 721px)').matches;
  }

  function pageInView() {
    return document.visibilityState === 'visible';
  }

  function route() {
    if (!state.user && !state.token) return;
    const match = /^#\/rooms\/(\d+)$/.exec(location.hash);
    if (match) {
      openRoom(Number(match[1]));
    } else {
      closeRoom();
      setView('rooms');
    }
  }

  // ---- the open room -------------------------------------------------------

  function newRoomState(id) {
    return {
      id,
      info: roomInfo(id),
      me: state.user,
      closed: false,
      ready: false, // history loaded: from now on it may be subscribed
      subscribing: false, // `subscribe` sent, its answer not back yet
      subscribed: false, // the socket's `subscribed` came: its frames are live
      subscribedOnce: false,
      messages: new Map(), // id -> { message, node }
      oldestSeq: null,
      lastSeq: 0,
      hasOlder: false,
      loadingOlder: null,
      people: new Map(), // user_id -> connections
      typing: new Map(), // user_id -> timer
      lastTypingSent: 0,
      pending: new Map(), // client_msg_id -> { content, node, sending }
      search: null,
      reads: new Map(), // user_id -> seq: the others' read markers ("seen")
      readSent: 0, // the highest seq this page marked read
      readTimer: null,
      replyTo: null, // the message the composer answers
      mine: new Map(), // message id -> Set of the keys this user reacted with (as far as seen)
    };
  }

  async function openRoom(id) {
    if (state.room && state.room.id === id) {
      setView('room');
      return;
    }
    closeRoom();
    showNotice(null);
    const room = newRoomState(id);
    state.room = room;
    setView('room');
    $('no-room').hidden = true;
    $('room').hidden = false;
    $('message-list').replaceChildren();
    $('pending-list').replaceChildren();
    $('history-status').textContent = 'Loading…';
    $('composer-error').textContent = '';
    renderConn();
    hideSearch();
    renderRooms();
    renderRoomHead(room);
    renderPeople(room);
    renderTyping(room);
    try {
      if (!room.info) {
        room.info = await api('GET', `/rooms/${id}`);
        if (state.room !== room) return;
        renderRoomHead(room);
      }
      const entry = state.inbox.get(id);
      if (entry) room.readSent = entry.lastReadSeq;
      const [page, people] = await Promise.all([
        api('GET', `/rooms/${id}/messages?limit=${PAGE}`),
        api('GET', `/rooms/${id}/users`),
        loadReads(room),
      ]);
      if (state.room !== room) return;
      page.items.forEach((message) => insertMessage(room, message));
      room.hasOlder = page.has_more;
      updateHistoryStatus(room);
      if (!room.subscribed) setPeople(room, people.items);
      scrollToBottom();
      // Live from the last seq shown on: the socket replays anything newer first.
      room.ready = true;
      subscribe(room);
      markReadSoon(room);
      await fillViewport(room);
      $('composer-input').focus();
    } catch (error) {
      if (state.room !== room) return;
      if (error.status === 404) roomGone(room, 'That room does not exist (any more).');
      else if (error.status === 403) roomGone(room, 'That room is private and you are not a member.');
      else $('history-status').textContent = explain(error, 'load this room');
    }
  }

  function closeRoom() {
    const room = state.room;
    if (!room) return;
    room.closed = true;
    clearTimeout(room.readTimer);
    room.typing.forEach((timer) => clearTimeout(timer));
    // One room followed at a time: its frames stop, its line in the list goes on
    // with `unread` frames.
    if (room.subscribed || room.subscribing) sendFrame({ type: 'unsubscribe', room_id: room.id });
    cancelReply(room);
    state.room = null;
    $('room').hidden = true;
    $('no-room').hidden = false;
    $('room-notice').textContent = 'Pick a room, or create one.';
    renderConn();
    renderRooms();
  }

  function roomTitle(room) {
    return room.info ? room.info.name : `Room ${room.id}`;
  }

  function renderRoomHead(room) {
    const info = room.info;
    $('room-name').textContent = roomTitle(room);
    $('room-description').textContent = info && info.description ? info.description : '';
    renderRooms();
    $('delete-room').hidden = !(info && ((info.created_by && info.created_by === room.me) || isAdmin()));
  }

  // ---- messages ------------------------------------------------------------

  function formatTime(iso) {
    const date = new Date(iso);
    const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (date.toDateString() === new Date().toDateString()) return time;
    return `${date.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${time}`;
  }

  function messageNode(room, message) {
    const own = message.user_id === room.me;
    const li = el('li', 'msg');
    if (own) li.classList.add('own');
    if (message.message_type === 'system') li.classList.add('system');
    li.dataset.id = String(message.id);
    li.dataset.seq = String(message.seq);
    const meta = el('div', 'msg-meta');
    meta.append(el('span', 'msg-author', message.user_id));
    const time = el('time', 'msg-time', formatTime(message.created_at));
    time.dateTime = message.created_at;
    time.title = new Date(message.created_at).toLocaleString();
    meta.append(time);
    const edited = el('button', 'msg-edited link-button', 'edited');
    edited.type = 'button';
    edited.title = 'Show the earlier versions';
    edited.hidden = !message.edited;
    edited.addEventListener('click', () => toggleVersions(room, message.id));
    meta.append(edited);
    if (own) {
      // "Seen" once another user's read marker passes it, see renderSeen().
      const seen = el('span', 'msg-seen', '✓ Seen');
      seen.hidden = true;
      meta.append(seen);
    }
    const quote = el('blockquote', 'msg-quote');
    li.append(meta, quote, el('p', 'msg-text', message.content));
    if (message.offer) li.append(offerCard(room, message.offer));
    li.append(el('div', 'msg-reactions'));
    renderQuote(room, li, message);
    renderReactions(room, li, message);
    // As the server rules: the author, the room's creator, moderators and admins.
    const mayDelete = own || isModerator() || Boolean(room.info && room.info.created_by === room.me);
    const actions = el('div', 'msg-actions');
    const reply = el('button', 'msg-reply-button', 'Reply');
    reply.type = 'button';
    reply.addEventListener('click', () => startReply(room, message.id));
    actions.append(reply);
    if (own && message.message_type === 'text') {
      const edit = el('button', 'msg-edit-button', 'Edit');
      edit.type = 'button';
      edit.addEventListener('click', () => startEdit(room, message.id));
      actions.append(edit);
    }
    if (mayDelete) {
      const remove = el('button', 'msg-delete-button', 'Delete');
      remove.type = 'button';
      remove.addEventListener('click', () => confirmClick(remove, 'Delete', () => deleteMessage(room, message.id)));
      actions.append(remove);
    }
    li.append(actions);
    return li;
  }

  // ---- replies, reactions, versions ----------------------------------------

  /** A short, plain-text excerpt of a message for quotes. */
  function excerpt(text) {
    const chars = [...text.replace(/\s+/g, ' ')];
    return chars.length > 80 ? `${chars.slice(0, 80).join('')}…` : chars.join('');
  }

  /** The quote of the message this one answers: its author and text when shown here. */
  function renderQuote(room, node, message) {
    const quote = node.querySelector('.msg-quote');
    if (!quote) return;
    quote.hidden = !message.reply_to;
    if (!message.reply_to) return;
    const answered = room.messages.get(message.reply_to);
    quote.replaceChildren();
    if (answered) {
      quote.append(el('span', 'msg-quote-author', answered.message.user_id),
        el('span', 'msg-quote-text', excerpt(answered.message.content)));
      quote.title = 'Show the message answered';
      quote.onclick = () => answered.node.scrollIntoView({ block: 'center' });
    } else {
      quote.append(el('span', 'msg-quote-text', 'a message not shown here (older, or deleted)'));
      quote.onclick = null;
    }
  }

  /** The reaction buttons: the quick keys and every key in use, with counts. */
  function renderReactions(room, node, message) {
    const box = node.querySelector('.msg-reactions');
    if (!box) return;
    const counts = message.reactions || {};
    const mine = room.mine.get(message.id) || new Set();
    const keys = [...QUICK_REACTIONS, ...Object.keys(counts).filter((k) => !QUICK_REACTIONS.includes(k))];
    box.replaceChildren(...keys.map((key) => {
      const count = counts[key] || 0;
      const button = el('button', 'reaction', count ? `${key} ${count}` : key);
      button.type = 'button';
      button.classList.toggle('used', count > 0);
      button.classList.toggle('mine', mine.has(key));
      button.setAttribute('aria-pressed', String(mine.has(key)));
      button.title = mine.has(key) ? `Take back ${key}` : `React with ${key}`;
      button.addEventListener('click', () => toggleReaction(room, message.id, key));
      return button;
    }));
  }

  async function toggleReaction(room, id, key) {
    const mine = room.mine.get(id) || new Set();
    const adding = !mine.has(key);
    try {
      const message = await api(adding ? 'PUT' : 'DELETE', `/messages/${id}/reactions/${encodeURIComponent(key)}`);
      if (adding) mine.add(key);
      else mine.delete(key);
      room.mine.set(id, mine);
      updateMessage(room, message);
    } catch (error) {
      $('composer-error').textContent = explain(error, 'react to this message');
    }
  }

  /** A `reaction` frame: the key's count after someone's change. */
  function onReaction(room, frame) {
    const known = room.messages.get(frame.message_id);
    if (!known) return;
    if (frame.user_id === room.me) {
      const mine = room.mine.get(frame.message_id) || new Set();
      if (frame.added) mine.add(frame.key);
      else mine.delete(frame.key);
      room.mine.set(frame.message_id, mine);
    }
    const reactions = { ...(known.message.reactions || {}) };
    if (frame.count > 0) reactions[frame.key] = frame.count;
    else delete reactions[frame.key];
    known.message = { ...known.message, reactions };
    renderReactions(room, known.node, known.message);
  }

  /** Shows (or hides) the texts an edited message had, oldest first. */
  async function toggleVersions(room, id) {
    const known = room.messages.get(id);
    if (!known) return;
    const shown = known.node.querySelector('.msg-versions');
    if (shown) {
      shown.remove();
      return;
    }
    let result;
    try {
      result = await api('GET', `/messages/${id}/versions`);
    } catch (error) {
      $('composer-error').textContent = explain(error, 'show the versions');
      return;
    }
    if (known.node.querySelector('.msg-versions')) return;
    const list = el('ol', 'msg-versions');
    list.setAttribute('aria-label', 'Versions, oldest first');
    for (const version of result.items) {
      const item = el('li', 'msg-version');
      const when = el('time', 'msg-time', formatTime(version.created_at));
      when.dateTime = version.created_at;
      item.append(el('span', 'msg-version-number', `v${version.version}`), when, el('p', 'msg-text', version.content));
      list.append(item);
    }
    known.node.querySelector('.msg-text').after(list);
  }

  function startReply(room, id) {
    const known = room.messages.get(id);
    if (!known) return;
    room.replyTo = id;
    $('reply-author').textContent = known.message.user_id;
    $('reply-text').textContent = excerpt(known.message.content);
    $('reply-bar').hidden = false;
    $('composer-input').focus();
  }

  function cancelReply(room) {
    if (room) room.replyTo = null;
    $('reply-bar').hidden = true;
  }

  // ---- offers ---------------------------------------------------------------

  /** The card of an offer: its terms, status, countdown and the answers this
   * user may give (as the server rules: accept, decline and counter are the
   * counterparty's — only `to_user_id` when set —, withdraw the author's). */
  function offerCard(room, offer) {
    const card = el('div', `offer-card offer-${offer.status}`);
    card.dataset.offer = String(offer.id);
    const head = el('div', 'offer-head');
    head.append(el('strong', 'offer-side', offer.side === 'buy' ? 'Buying' : 'Selling'),
      el('span', 'offer-status', offer.status));
    card.append(head);
    const terms = el('p', 'offer-terms',
      `${offer.quantity} ${offer.unit} of ${offer.commodity} at ${offer.price} ${offer.currency}/${offer.unit}`);
    card.append(terms);
    const extra = [offer.incoterm, offer.delivery_place,
      offer.delivery_from && `from ${offer.delivery_from}`, offer.delivery_to && `to ${offer.delivery_to}`,
      offer.to_user_id && `for ${offer.to_user_id}`].filter(Boolean);
    if (extra.length) card.append(el('p', 'offer-extra muted', extra.join(' · ')));
    if (offer.note) card.append(el('p', 'offer-note', offer.note));
    if (offer.responded_by) card.append(el('p', 'offer-extra muted', `${offer.status} by ${offer.responded_by}`));
    if (offer.status === 'open' && offer.expires_at) {
      const left = el('p', 'offer-countdown muted');
      left.dataset.expires = offer.expires_at;
      card.append(left);
      tickCountdown(left);
    }
    if (offer.status !== 'open') return card;
    const mine = offer.from_user_id === room.me;
    const counterparty = !mine && (!offer.to_user_id || offer.to_user_id === room.me);
    const actions = el('div', 'offer-actions');
    const answer = (verb, label, primary) => {
      const button = el('button', primary ? 'primary' : '', label);
      button.type = 'button';
      button.addEventListener('click', () => answerOffer(room, offer, verb, card));
      actions.append(button);
    };
    if (counterparty) {
      answer('accept', 'Accept', true);
      answer('decline', 'Decline', false);
      const counter = el('button', '', 'Counter');
      counter.type = 'button';
      counter.addEventListener('click', () => startCounter(room, offer, card));
      actions.append(counter);
    }
    if (mine) answer('withdraw', 'Withdraw', false);
    if (actions.childElementCount) card.append(actions);
    card.append(el('p', 'offer-error error'));
    return card;
  }

  /** An offer call's error: a 409 or 422 says best itself (the status, the term). */
  function explainOffer(error, doing) {
    if (error.status === 409 || error.status === 422) return error.message;
    return explain(error, doing);
  }

  async function answerOffer(room, offer, verb, card) {
    card.querySelector('.offer-error').textContent = '';
    try {
      const changed = await api('POST', `/offers/${offer.id}/${verb}`);
      showOffer(room, changed);
    } catch (error) {
      card.querySelector('.offer-error').textContent = explainOffer(error, `${verb} the offer`);
    }
  }

  /** An inline form: the price and quantity of the counter-offer. */
  function startCounter(room, offer, card) {
    if (card.querySelector('.offer-counter')) return;
    const form = el('form', 'offer-counter');
    const price = el('input');
    price.value = offer.price;
    price.setAttribute('aria-label', 'Counter price');
    price.inputMode = 'decimal';
    const quantity = el('input');
    quantity.value = offer.quantity;
    quantity.setAttribute('aria-label', 'Counter quantity');
    quantity.inputMode = 'decimal';
    const go = el('button', 'primary', 'Send counter');
    go.type = 'submit';
    form.append(price, quantity, go);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = {};
      if (price.value.trim() !== offer.price) body.price = price.value.trim();
      if (quantity.value.trim() !== offer.quantity) body.quantity = quantity.value.trim();
      try {
        await api('POST', `/offers/${offer.id}/counter`, body);
        form.remove();
      } catch (error) {
        card.querySelector('.offer-error').textContent = explainOffer(error, 'counter the offer');
      }
    });
    card.append(form);
    price.focus();
  }

  /** Redraws the card of an offer whose message is on the page. */
  function showOffer(room, offer) {
    const known = room.messages.get(offer.message_id);
    if (!known) return;
    known.message = { ...known.message, offer };
    const card = known.node.querySelector('.offer-card');
    const fresh = offerCard(room, offer);
    if (card) card.replaceWith(fresh);
    else known.node.append(fresh);
  }

  function tickCountdown(node) {
    const left = Date.parse(node.dataset.expires) - Date.now();
    if (left <= 0) {
      node.textContent = 'expired';
      return;
    }
    const secs = Math.floor(left / 1000);
    const h = Math.floor(secs / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const sec = String(secs % 60).padStart(2, '0');
    node.textContent = `expires in ${h ? `${h} h ` : ''}${m} min ${sec} s`;
  }

  // One timer for every countdown on the page.
  setInterval(() => {
    for (const node of document.querySelectorAll('.offer-countdown')) tickCountdown(node);
  }, 1000);

  async function makeOffer(event) {
    event.preventDefault();
    const room = state.room;
    if (!room) return;
    const value = (id) => $(id).value.trim();
    const body = {
      side: value('offer-side'), commodity: value('offer-commodity'), quantity: value('offer-quantity'),
      unit: value('offer-unit'), price: value('offer-price'), currency: value('offer-currency').toUpperCase(),
    };
    if (value('offer-to')) body.to_user_id = value('offer-to');
    const minutes = Number(value('offer-minutes'));
    if (minutes > 0) body.expires_at = new Date(Date.now() + minutes * 60000).toISOString();
    $('offer-error').textContent = '';
    try {
      const message = await api('POST', `/rooms/${room.id}/offers`, body);
      insertMessage(room, message);
      $('offer-form').reset();
      $('offer-box').open = false;
    } catch (error) {
      $('offer-error').textContent = explainOffer(error, 'make the offer');
    }
  }

  /** Adds or refreshes a message, keeping the list in seq order. */
  function insertMessage(room, message) {
    const known = room.messages.get(message.id);
    if (known) {
      updateMessage(room, message);
      return known.node;
    }
    const node = messageNode(room, message);
    room.messages.set(message.id, { message, node });
    const list = $('message-list');
    let after = list.lastElementChild;
    while (after && Number(after.dataset.seq) > message.seq) after = after.previousElementSibling;
    if (after) after.after(node);
    else list.prepend(node);
    room.lastSeq = Math.max(room.lastSeq, message.seq);
    if (room.oldestSeq === null || message.seq < room.oldestSeq) room.oldestSeq = message.seq;
    if (message.user_id === room.me) renderSeen(room, room.messages.get(message.id));
    // Replies loaded before the message they answer (an older page) can quote it now.
    for (const other of room.messages.values()) {
      if (other.message.reply_to === message.id) renderQuote(room, other.node, other.message);
    }
    return node;
  }

  // ---- read markers --------------------------------------------------------

  /** Who has read how far, for the ticks on this user's own messages. */
  async function loadReads(room) {
    let result;
    try {
      result = await api('GET', `/rooms/${room.id}/reads`);
    } catch {
      return; // no ticks is better than no room (an older server has no markers)
    }
    if (state.room !== room) return;
    for (const item of result.items) noteRead(room, item.user_id, item.seq);
    renderSeenAll(room);
  }

  /** A marker only moves forward; this user's own (another tab or device) is
   * remembered so the page does not send it again. */
  function noteRead(room, user, seq) {
    if (user === room.me) {
      room.readSent = Math.max(room.readSent, seq);
      return false;
    }
    if ((room.reads.get(user) || 0) >= seq) return false;
    room.reads.set(user, seq);
    return true;
  }

  function onRead(room, frame) {
    if (noteRead(room, frame.user_id, frame.seq)) renderSeenAll(room);
  }

  function renderSeen(room, known) {
    if (!known) return;
    const tick = known.node.querySelector('.msg-seen');
    if (!tick) return;
    const by = [...room.reads].filter(([, seq]) => seq >= known.message.seq).map(([user]) => user).sort();
    tick.hidden = by.length === 0;
    tick.title = by.length ? `Seen by ${by.join(', ')}` : '';
    known.node.classList.toggle('seen', by.length > 0);
  }

  function renderSeenAll(room) {
    for (const known of room.messages.values()) {
      if (known.message.user_id === room.me) renderSeen(room, known);
    }
  }

  /** Moves this user's marker to the newest message shown, when it is shown: the
   * room open, the page in view and scrolled to the bottom. Bursts make one call. */
  function markReadSoon(room) {
    if (!room || room.closed || room.readTimer) return;
    room.readTimer = setTimeout(() => {
      room.readTimer = null;
      markRead(room);
    }, READ_DELAY_MS);
  }

  function markRead(room) {
    if (state.room !== room || !room.ready || !readingNow(room.id)) return;
    const seq = room.lastSeq;
    if (seq <= room.readSent) return;
    room.readSent = seq;
    const entry = state.inbox.get(room.id);
    if (entry) {
      // The server's `unread` frame confirms this; the badge need not wait for it.
      entry.unread = 0;
      entry.lastReadSeq = Math.max(entry.lastReadSeq, seq);
      renderRooms();
    }
    if (room.subscribed && sendFrame({ type: 'read', room_id: room.id, seq })) return;
    api('POST', `/rooms/${room.id}/read`, { seq }).catch(() => {
      // Not moved: the next message or scroll tries again.
      if (room.readSent === seq) room.readSent = seq - 1;
    });
  }

  function updateMessage(room, message) {
    noteChangedMessage(room.id, message.id, message);
    const known = room.messages.get(message.id);
    if (!known) return;
    known.message = { ...known.message, ...message };
    if (known.node.querySelector('.msg-edit')) return; // being edited here: keep the draft
    known.node.querySelector('.msg-text').textContent = known.message.content;
    known.node.querySelector('.msg-edited').hidden = !known.message.edited;
    const versions = known.node.querySelector('.msg-versions');
    if (versions && message.content !== undefined) versions.remove(); // stale: shown again on click
    renderReactions(room, known.node, known.message);
  }

  function removeMessage(room, id) {
    noteChangedMessage(room.id, id, null);
    const known = room.messages.get(id);
    if (!known) return;
    known.node.remove();
    room.messages.delete(id);
    if (room.replyTo === id) cancelReply(room);
    for (const other of room.messages.values()) {
      if (other.message.reply_to === id) renderQuote(room, other.node, other.message);
    }
    updateHistoryStatus(room);
  }

  function startEdit(room, id) {
    const known = room.messages.get(id);
    if (!known || known.node.querySelector('.msg-edit')) return;
    const text = known.node.querySelector('.msg-text');
    const form = el('form', 'msg-edit');
    const input = el('textarea');
    input.value = known.message.content;
    input.maxLength = MAX_CONTENT_CHARS;
    input.rows = Math.min(6, known.message.content.split('\n').length + 1);
    input.setAttribute('aria-label', 'Edit message');
    const buttons = el('div', 'msg-actions');
    const save = el('button', 'primary', 'Save');
    save.type = 'submit';
    const cancel = el('button', null, 'Cancel');
    cancel.type = 'button';
    const note = el('span', 'msg-note');
    buttons.append(note, cancel, save);
    form.append(input, buttons);
    text.hidden = true;
    known.node.querySelector('.msg-actions').hidden = true;
    text.after(form);
    input.focus();
    const finish = () => {
      form.remove();
      text.hidden = false;
      known.node.querySelector('.msg-actions').hidden = false;
      updateMessage(room, known.message);
    };
    cancel.addEventListener('click', finish);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') finish();
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const content = input.value;
      if (!content.trim()) {
        note.textContent = 'A message cannot be empty.';
        return;
      }
      if (content === known.message.content) {
        finish();
        return;
      }
      save.disabled = true;
      try {
        const updated = await api('PATCH', `/messages/${id}`, { content });
        known.message = { ...known.message, ...updated };
        finish();
      } catch (error) {
        note.textContent = explain(error, 'edit this message');
        save.disabled = false;
      }
    });
  }

  async function deleteMessage(room, id) {
    try {
      await api('DELETE', `/messages/${id}`);
      removeMessage(room, id);
    } catch (error) {
      if (error.status === 404) removeMessage(room, id);
      else $('composer-error').textContent = explain(error, 'delete this message');
    }
  }

  function updateHistoryStatus(room) {
    let text = '';
    if (room.loadingOlder) text = 'Loading older messages…';
    else if (!room.hasOlder) text = room.messages.size ? 'This is the beginning of the conversation.' : 'No messages yet — say hello!';
    $('history-status').textContent = text;
  }

  /** Loads the page before the oldest message shown, keeping the view where it was. */
  function loadOlder(room) {
    if (!room.hasOlder) return Promise.resolve();
    if (room.loadingOlder) return room.loadingOlder;
    const box = $('messages');
    room.loadingOlder = (async () => {
      updateHistoryStatus(room);
      try {
        const page = await api('GET', `/rooms/${room.id}/messages?limit=${PAGE}&before=${room.oldestSeq}`);
        if (state.room !== room) return;
        const height = box.scrollHeight;
        const top = box.scrollTop;
        page.items.forEach((message) => insertMessage(room, message));
        room.hasOlder = page.has_more && page.items.length > 0;
        box.scrollTop = top + (box.scrollHeight - height);
      } catch (error) {
        $('history-status').textContent = `Older messages did not load. ${explain(error, 'load them')}`;
        throw error;
      } finally {
        room.loadingOlder = null;
      }
      updateHistoryStatus(room);
    })();
    return room.loadingOlder;
  }

  /** Short histories leave nothing to scroll: load older pages until there is. */
  async function fillViewport(room) {
    const box = $('messages');
    while (state.room === room && room.hasOlder && box.scrollHeight <= box.clientHeight + NEAR_EDGE_PX) {
      await loadOlder(room);
    }
  }

  function nearBottom() {
    const box = $('messages');
    return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_EDGE_PX;
  }

  function scrollToBottom() {
    const box = $('messages');
    box.scrollTop = box.scrollHeight;
    $('jump-latest').hidden = true;
  }

  function onScroll() {
    const room = state.room;
    if (!room) return;
    if (nearBottom()) {
      $('jump-latest').hidden = true;
      markReadSoon(room);
    }
    if ($('messages').scrollTop < NEAR_EDGE_PX) loadOlder(room).catch(() => {});
  }

  // ---- sending -------------------------------------------------------------

  function newClientMsgId() {
    if (crypto.randomUUID) return `web-${crypto.randomUUID()}`;
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  }

  function send(event) {
    if (event) event.preventDefault();
    const room = state.room;
    const input = $('composer-input');
    const content = input.value;
    if (!room || !content.trim()) return;
    if ([...content].length > MAX_CONTENT_CHARS) {
      $('composer-error').textContent = `A message is at most ${MAX_CONTENT_CHARS} characters.`;
      return;
    }
    $('composer-error').textContent = '';
    input.value = '';
    autoGrow();
    const id = newClientMsgId();
    const node = el('li', 'msg own pending');
    const meta = el('div', 'msg-meta');
    meta.append(el('span', 'msg-author', room.me), el('span', 'msg-status', 'sending…'));
    node.append(meta, el('p', 'msg-text', content));
    $('pending-list').append(node);
    const replyTo = room.replyTo;
    if (replyTo) {
      const answered = room.messages.get(replyTo);
      if (answered) node.append(el('blockquote', 'msg-quote', excerpt(answered.message.content)));
    }
    cancelReply(room);
    room.pending.set(id, { content, node, replyTo });
    scrollToBottom();
    deliver(room, id);
  }

  /** Sends a pending message over the socket, or over REST while the socket is down.
   * Its client_msg_id makes every retry safe: the server stores it once. */
  async function deliver(room, id) {
    const pending = room.pending.get(id);
    if (!pending || pending.sending) return;
    pending.node.classList.remove('failed');
    pending.node.querySelector('.msg-status').textContent = 'sending…';
    const frame = { type: 'message', room_id: room.id, content: pending.content, client_msg_id: id };
    if (pending.replyTo) frame.reply_to = pending.replyTo;
    if (room.subscribed && sendFrame(frame)) return;
    pending.sending = true;
    try {
      const body = { content: pending.content, client_msg_id: id };
      if (pending.replyTo) body.reply_to = pending.replyTo;
      const message = await api('POST', `/rooms/${room.id}/messages`, body);
      if (state.room === room) confirmPending(room, message);
    } catch (error) {
      pending.sending = false;
      if (error.status === 0 || error.status >= 500) {
        pending.node.querySelector('.msg-status').textContent = 'waiting for the connection…';
      } else {
        failPending(room, id, explain(error, 'post in this room'));
      }
    }
  }

  function confirmPending(room, message) {
    insertMessage(room, message);
    const pending = message.client_msg_id ? room.pending.get(message.client_msg_id) : null;
    if (pending && message.user_id === room.me) {
      pending.node.remove();
      room.pending.delete(message.client_msg_id);
    }
  }

  function failPending(room, id, reason) {
    const pending = room.pending.get(id);
    if (!pending) return;
    pending.node.classList.add('failed');
    const status = pending.node.querySelector('.msg-status');
    status.textContent = `not sent: ${reason}`;
    if (!pending.node.querySelector('.msg-actions')) {
      const actions = el('div', 'msg-actions');
      const retry = el('button', null, 'Retry');
      retry.type = 'button';
      retry.addEventListener('click', () => {
        actions.remove();
        deliver(room, id);
      });
      const discard = el('button', null, 'Discard');
      discard.type = 'button';
      discard.addEventListener('click', () => {
        pending.node.remove();
        room.pending.delete(id);
      });
      actions.append(retry, discard);
      pending.node.append(actions);
    }
  }

  function onTypingInput() {
    autoGrow();
    const room = state.room;
    if (!room || !room.subscribed) return;
    if (!$('composer-input').value.trim()) return;
    const now = Date.now();
    if (now - room.lastTypingSent < TYPING_SEND_EVERY_MS) return;
    if (sendFrame({ type: 'typing', room_id: room.id })) room.lastTypingSent = now;
  }

  function autoGrow() {
    const input = $('composer-input');
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
  }

  // ---- the socket ----------------------------------------------------------

  /** The top bar's connection badge. While a room is open it says whether that
   * room is live; otherwise it shows only trouble (the list is live too). */
  function setConn(name, text) {
    if (state.sock) state.sock.status = { name, text };
    renderConn();
  }

  function renderConn() {
    const sock = state.sock;
    const room = state.room;
    let name = 'idle';
    let text = '';
    if (sock && sock.status.name !== 'online') {
      ({ name, text } = sock.status);
    } else if (sock && room) {
      [name, text] = room.subscribed ? ['online', 'online'] : ['connecting', 'joining…'];
    }
    const badge = $('conn');
    badge.dataset.state = name;
    badge.textContent = text;
    badge.hidden = name === 'idle';
    const alert = sock ? sock.alert : null;
    $('room-alert').textContent = alert || '';
    $('room-alert').hidden = !alert;
  }

  /** Why live updates are down, shown where the room is read (`null` clears it). */
  function setRoomAlert(text) {
    if (state.sock) state.sock.alert = text;
    renderConn();
  }

  function socketUrl() {
    const params = new URLSearchParams();
    if (state.token) params.set('token', state.token);
    else params.set('user_id', state.user);
    return `/ws?${params}`;
  }

  /** Opens the inbox socket, or redials it: one per page, for the whole session. */
  function connect() {
    if (!state.sock) {
      state.sock = {
        ws: null,
        closed: false,
        ready: false, // `ready` came on this connection
        readyOnce: false,
        attempt: 0,
        retryTimer: null,
        pingTimer: null,
        awaitingPong: false,
        refused: false,
        alert: null,
        status: { name: 'connecting', text: 'connecting…' },
      };
    }
    const sock = state.sock;
    if (sock.closed || sock.ws) return;
    if (!sock.refused) {
      setConn(sock.readyOnce ? 'reconnecting' : 'connecting', sock.readyOnce ? 'reconnecting…' : 'connecting…');
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${socketUrl()}`);
    sock.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => { opened = true; });
    ws.addEventListener('message', (event) => {
      if (sock.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      onFrame(sock, frame);
    });
    ws.addEventListener('close', (event) => onSocketClosed(sock, ws, event.code, opened));
  }

  function disconnect() {
    const sock = state.sock;
    if (!sock) return;
    sock.closed = true;
    clearTimeout(sock.retryTimer);
    clearInterval(sock.pingTimer);
    if (sock.ws) {
      const { ws } = sock;
      sock.ws = null;
      ws.close(1000, 'signed out');
    }
    state.sock = null;
    renderConn();
  }

  /** Sends a frame if the socket is up; `false` tells the caller to use REST or wait. */
  function sendFrame(frame) {
    const sock = state.sock;
    if (!sock || !sock.ready || !sock.ws || sock.ws.readyState !== WebSocket.OPEN) return false;
    sock.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Follows the open room from the last seq shown: `subscribed`, then every
   * message after it, then live. Waits for the history and for the socket. */
  function subscribe(room) {
    if (room.closed || !room.ready || room.subscribed || room.subscribing) return;
    if (sendFrame({ type: 'subscribe', room_id: room.id, since: room.lastSeq })) room.subscribing = true;
    renderConn();
  }

  function onFrame(sock, frame) {
    switch (frame.type) {
      case 'ready': onReady(sock, frame); break;
      case 'pong': sock.awaitingPong = false; break;
      case 'room_added': onRoomAdded(frame); break;
      case 'room_removed': onRoomRemoved(frame); break;
      case 'unread': onUnread(frame); break;
      case 'error': onErrorFrame(frame); break;
      default: onRoomFrame(frame); break;
    }
  }

  function onReady(sock, frame) {
    sock.ready = true;
    sock.readyOnce = true;
    sock.attempt = 0;
    sock.refused = false;
    sock.alert = null;
    setConn('online', 'online');
    startHeartbeat(sock);
    // Frames sent while this page was away are gone: the list catches up.
    loadInbox().catch(() => {});
    const room = state.room;
    if (room) {
      room.subscribed = false;
      room.subscribing = false;
      subscribe(room);
    }
  }

  /** A frame of one room: only the open room's, once it is subscribed. */
  function onRoomFrame(frame) {
    if (frame.type === 'message') noteLastMessage(withoutType(frame));
    const room = state.room;
    if (!room || room.closed || frame.room_id !== room.id) return;
    if (frame.type === 'subscribed') {
      onSubscribed(room, frame);
      return;
    }
    // Before `subscribed` (a previous subscription's tail): the replay brings them.
    if (!room.subscribed) return;
    switch (frame.type) {
      case 'message': onLiveMessage(room, frame); break;
      case 'message_updated': updateMessage(room, withoutType(frame)); break;
      case 'message_deleted': removeMessage(room, frame.id); break;
      case 'reaction': onReaction(room, frame); break;
      case 'user_joined':
        room.people.set(frame.user_id, Math.max(1, room.people.get(frame.user_id) || 0));
        renderPeople(room);
        break;
      case 'user_left':
        room.people.delete(frame.user_id);
        stopTyping(room, frame.user_id);
        renderPeople(room);
        break;
      case 'presence': // big rooms: the joins and departures of an interval at once
        for (const user of frame.joined) room.people.set(user, Math.max(1, room.people.get(user) || 0));
        for (const user of frame.left) {
          room.people.delete(user);
          stopTyping(room, user);
        }
        renderPeople(room);
        break;
      case 'typing': if (frame.user_id !== room.me) startTyping(room, frame.user_id); break;
      case 'read': onRead(room, frame); break;
      case 'offer_updated': showOffer(room, frame.offer); break;
      case 'room_deleted': roomGone(room, `Room “${roomTitle(room)}” was deleted.`); break;
      default: break; // `unsubscribed`: the answer to leaving a room, nothing to do
    }
  }

  function withoutType(frame) {
    const { type, ...rest } = frame;
    return rest;
  }

  function onSubscribed(room, frame) {
    const resumed = room.subscribedOnce;
    room.me = frame.user_id;
    room.subscribing = false;
    room.subscribed = true;
    room.subscribedOnce = true;
    renderConn();
    setPeople(room, frame.users);
    for (const id of room.pending.keys()) deliver(room, id);
    if (resumed) reconcile(room).catch(() => {});
    markReadSoon(room);
  }

  function onLiveMessage(room, frame) {
    const message = withoutType(frame);
    const follow = nearBottom() || (message.user_id === room.me);
    confirmPending(room, message);
    updateHistoryStatus(room);
    stopTyping(room, message.user_id);
    if (follow) scrollToBottom();
    else $('jump-latest').hidden = false;
    markReadSoon(room);
  }

  function onErrorFrame(frame) {
    const room = state.room;
    if (!room || room.closed || (frame.room_id !== undefined && frame.room_id !== room.id)) return;
    const id = frame.client_msg_id;
    if (id && room.pending.has(id)) {
      if (frame.code === 'unavailable' || frame.code === 'rate_limited') {
        const wait = frame.retry_after_ms || 2000;
        room.pending.get(id).node.querySelector('.msg-status').textContent = 'busy, retrying…';
        setTimeout(() => { if (state.room === room) deliver(room, id); }, wait);
      } else {
        failPending(room, id, explainFrame(frame));
      }
      return;
    }
    if (id) return; // a message already settled (a repeat's answer)
    if (room.subscribing) {
      onSubscribeRefused(room, frame);
      return;
    }
    // `typing` and `read` are best effort; the next one tries again.
    if (frame.room_id === undefined) $('composer-error').textContent = explainFrame(frame);
  }

  /** `subscribe` was answered with an error: closed to us, gone, or busy. */
  function onSubscribeRefused(room, frame) {
    room.subscribing = false;
    if (frame.code === 'forbidden') {
      return roomGone(room, room.removed ? `You are no longer a member of “${roomTitle(room)}”.`
        : 'That room is private and you are not a member.');
    }
    if (frame.code === 'not_found') {
      return roomGone(room, room.removed ? `Room “${roomTitle(room)}” was deleted.` : 'That room does not exist (any more).');
    }
    if (frame.code === 'validation_failed') {
      // The page follows one room and always sends a valid `since`: what is left
      // is "already subscribed" (a subscription the server kept), so it is live.
      room.subscribed = true;
      room.subscribedOnce = true;
      renderConn();
      return undefined;
    }
    const wait = frame.retry_after_ms || 2000;
    setConn('reconnecting', 'server busy — retrying…');
    setTimeout(() => {
      if (state.room !== room || !state.sock || !state.sock.ready) return;
      setConn('online', 'online');
      subscribe(room);
    }, wait);
    return undefined;
  }

  function onSocketClosed(sock, ws, code, opened) {
    if (sock.ws !== ws) return;
    sock.ws = null;
    sock.ready = false;
    clearInterval(sock.pingTimer);
    if (sock.closed) return;
    dropLiveState();
    if (code === 4401) {
      signOut('Your token expired: paste a new one.');
      return;
    }
    if (opened) scheduleReconnect(sock, 'offline');
    else whyRefused().then((why) => onRefused(sock, why));
  }

  /** Offline: the open room is no longer followed, and who is online or typing
   * there is not known. */
  function dropLiveState() {
    const room = state.room;
    if (!room) return;
    room.subscribed = false;
    room.subscribing = false;
    room.typing.forEach((timer) => clearTimeout(timer));
    room.typing.clear();
    renderTyping(room);
    setPeople(room, null);
  }

  /** A browser tells a page nothing about an upgrade that failed. The same URL
   * as a plain request runs the same checks (all but `Origin`, which browsers
   * send only with the upgrade) and answers with a status that says why. */
  async function whyRefused() {
    let response;
    try {
      response = await fetch(socketUrl(), { cache: 'no-store', headers: { Accept: 'application/json' } });
    } catch {
      return 'offline';
    }
    if ([401, 403, 404, 429].includes(response.status)) return response.status;
    if (response.status >= 500) return 'unavailable';
    return 'refused'; // every check passed: the upgrade itself was turned down
  }

  function onRefused(sock, why) {
    if (sock.closed || state.sock !== sock) return undefined;
    if (why === 401) return signOut('The server no longer accepts your sign-in: sign in again.');
    if (why === 429) {
      setRoomAlert('Too many live connections from you or this network just now: this page keeps trying.');
      return scheduleReconnect(sock, 'busy');
    }
    if (why === 'refused' || why === 403) {
      sock.refused = true;
      setRoomAlert('Live updates refused: the server answers this page but not its socket. This address may be '
        + 'missing from CORS_ORIGINS, or a proxy drops WebSocket upgrades; the server’s log says which. '
        + 'What you send is still delivered.');
      return scheduleReconnect(sock, 'refused');
    }
    return scheduleReconnect(sock, why === 'unavailable' ? 'unavailable' : 'offline');
  }

  /** Exponential backoff with jitter, capped; reset by the next `ready`. */
  function scheduleReconnect(sock, why) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** sock.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    sock.attempt += 1;
    const wait = `retrying in ${Math.max(1, Math.round(delay / 1000))} s`;
    if (why === 'refused') setConn('refused', `refused — ${wait}`);
    else if (why === 'busy') setConn('reconnecting', `server busy — ${wait}`);
    else if (why === 'unavailable') setConn('reconnecting', `server unavailable — ${wait}`);
    else setConn('reconnecting', `offline — ${wait}`);
    clearTimeout(sock.retryTimer);
    sock.retryTimer = setTimeout(() => reconnect(sock), delay);
  }

  function reconnect(sock) {
    if (sock.closed || sock.ws || state.sock !== sock) return;
    clearTimeout(sock.retryTimer);
    if (!sock.refused) setConn('reconnecting', 'reconnecting…');
    connect();
  }

  /** Pings the server now and then; a socket that stops answering is dropped and redialled
   * instead of waiting for the operating system to notice a dead network. */
  function startHeartbeat(sock) {
    clearInterval(sock.pingTimer);
    sock.awaitingPong = false;
    sock.pingTimer = setInterval(() => {
      const { ws } = sock;
      if (!ws) return;
      if (sock.awaitingPong) {
        sock.ws = null;
        sock.ready = false;
        ws.close(4000, 'no pong');
        clearInterval(sock.pingTimer);
        dropLiveState();
        scheduleReconnect(sock, 'offline');
        return;
      }
      sock.awaitingPong = true;
      ws.send('{"type":"ping"}');
    }, PING_EVERY_MS);
  }

  /** Resume replays new messages only: refresh the newest page for edits and
   * deletions made while this page was away, and the read markers it missed. */
  async function reconcile(room) {
    const [page] = await Promise.all([api('GET', `/rooms/${room.id}/messages?limit=${PAGE}`), loadReads(room)]);
    if (state.room !== room || page.items.length === 0) return;
    const first = page.items[0].seq;
    const last = page.items[page.items.length - 1].seq;
    const present = new Set(page.items.map((m) => m.id));
    for (const [id, known] of room.messages) {
      if (known.message.seq >= first && known.message.seq <= last && !present.has(id)) removeMessage(room, id);
    }
    page.items.forEach((message) => insertMessage(room, message));
  }

  // ---- presence and typing -------------------------------------------------

  /** `null`: not connected, so not known. */
  function setPeople(room, users) {
    room.peopleKnown = users !== null;
    room.people = new Map((users || []).map((u) => [u.user_id, u.connections || 1]));
    renderPeople(room);
  }

  function renderPeople(room) {
    $('people-unknown').hidden = room.peopleKnown !== false;
    $('people-toggle').dataset.known = String(room.peopleKnown !== false);
    if (room.peopleKnown === false) {
      $('people-list').replaceChildren();
      $('people-count').textContent = '–';
      return;
    }
    const names = [...room.people.keys()].sort((a, b) => a.localeCompare(b));
    const items = names.map((name) => {
      const li = el('li', null, name);
      li.dataset.user = name;
      if (name === room.me) li.append(el('span', 'you', '(you)'));
      return li;
    });
    $('people-list').replaceChildren(...items);
    $('people-count').textContent = String(names.length);
  }

  function startTyping(room, user) {
    clearTimeout(room.typing.get(user));
    room.typing.set(user, setTimeout(() => stopTyping(room, user), TYPING_SHOWN_FOR_MS));
    renderTyping(room);
  }

  function stopTyping(room, user) {
    if (!room.typing.has(user)) return;
    clearTimeout(room.typing.get(user));
    room.typing.delete(user);
    renderTyping(room);
  }

  function renderTyping(room) {
    const names = [...room.typing.keys()];
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    $('typing').textContent = text;
  }

  // ---- search --------------------------------------------------------------

  /** The server's snippet is HTML-escaped text with matches in <mark>: split on the
   * markers and decode the five entities, then build it from text nodes. */
  function snippetNodes(snippet) {
    const decode = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
      .replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    const nodes = [];
    let marked = false;
    for (const part of snippet.split(/(<mark>|<\/mark>)/)) {
      if (part === '<mark>') marked = true;
      else if (part === '</mark>') marked = false;
      else if (part) nodes.push(marked ? el('mark', null, decode(part)) : document.createTextNode(decode(part)));
    }
    return nodes;
  }

  async function search(event, more) {
    if (event) event.preventDefault();
    const room = state.room;
    if (!room) return;
    const q = more ? room.search.q : $('search-input').value.trim();
    if (!q) {
      hideSearch();
      return;
    }
    const cursor = more ? room.search.cursor : null;
    const params = new URLSearchParams({ q, limit: String(SEARCH_PAGE) });
    if (cursor) params.set('cursor', cursor);
    $('search-results').hidden = false;
    if (!more) {
      $('search-list').replaceChildren();
      $('search-summary').textContent = 'Searching…';
    }
    try {
      const result = await api('GET', `/rooms/${room.id}/messages/search?${params}`);
      if (state.room !== room) return;
      const count = (more ? room.search.count : 0) + result.items.length;
      room.search = { q, cursor: result.next_cursor, count };
      result.items.forEach((hit) => $('search-list').append(searchHit(room, hit)));
      $('search-summary').textContent = count
        ? `${count}${result.next_cursor ? '+' : ''} result${count === 1 ? '' : 's'} for “${q}”`
        : `No messages match “${q}”.`;
      $('search-more').hidden = !result.next_cursor;
    } catch (error) {
      $('search-summary').textContent = explain(error, 'search this room');
      $('search-more').hidden = true;
    }
  }

  function searchHit(room, hit) {
    const li = el('li');
    const button = el('button', 'hit');
    button.type = 'button';
    button.append(el('span', 'hit-meta', `${hit.user_id} · ${formatTime(hit.created_at)}`));
    const text = el('span', 'hit-text');
    text.append(...snippetNodes(hit.snippet || hit.content));
    button.append(text);
    button.addEventListener('click', () => jumpTo(room, hit));
    li.append(button);
    return li;
  }

  async function jumpTo(room, message) {
    for (let pages = 0; !room.messages.has(message.id) && room.hasOlder && pages < 40; pages += 1) {
      if (room.oldestSeq !== null && room.oldestSeq <= message.seq) break;
      try {
        await loadOlder(room);
      } catch {
        return;
      }
      if (state.room !== room) return;
    }
    const known = room.messages.get(message.id);
    if (!known) {
      $('search-summary').textContent = 'That message is no longer in the room.';
      return;
    }
    known.node.scrollIntoView({ block: 'center' });
    known.node.classList.remove('flash');
    void known.node.offsetWidth; // restart the animation
    known.node.classList.add('flash');
  }

  function hideSearch() {
    $('search-results').hidden = true;
    $('search-list').replaceChildren();
    $('search-more').hidden = true;
    if (state.room) state.room.search = null;
  }

  // ---- wiring --------------------------------------------------------------

  function wireEvents() {
    $('login-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      $('login-error').textContent = '';
      if (state.auth === 'required') {
        const token = $('login-token').value.trim();
        if (!token) {
          $('login-error').textContent = 'Please paste a token.';
          return;
        }
        await signIn({ token });
      } else {
        const [name, problem] = validName($('login-user').value);
        if (problem) {
          $('login-error').textContent = problem;
          return;
        }
        await signIn({ user: name, role: $('login-role').value });
      }
    });
    $('logout').addEventListener('click', () => {
      history.replaceState(null, '', '#/');
      signOut();
    });
    $('new-room-form').addEventListener('submit', createRoom);
    $('rooms-refresh').addEventListener('click', () => {
      $('rooms-error').textContent = '';
      Promise.all([loadRooms(), loadInbox()])
        .catch((e) => { $('rooms-error').textContent = explain(e, 'list the rooms'); });
    });
    $('delete-room').addEventListener('click', (event) => confirmClick(event.currentTarget, 'Delete room', deleteRoom));
    $('back').addEventListener('click', () => { location.hash = '#/'; });
    const showPeople = (open) => {
      $('people-pane').classList.toggle('open', open);
      $('people-toggle').setAttribute('aria-expanded', String(open));
    };
    $('people-toggle').addEventListener('click', () => showPeople(!$('people-pane').classList.contains('open')));
    document.addEventListener('click', (event) => {
      if (!event.target.closest('#people-pane, #people-toggle')) showPeople(false);
    });
    $('messages').addEventListener('scroll', onScroll, { passive: true });
    $('jump-latest').addEventListener('click', scrollToBottom);
    $('composer').addEventListener('submit', send);
    $('reply-cancel').addEventListener('click', () => cancelReply(state.room));
    $('offer-form').addEventListener('submit', makeOffer);
    $('composer-input').addEventListener('input', onTypingInput);
    $('composer-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) send(event);
    });
    $('search-form').addEventListener('submit', (event) => search(event, false));
    $('search-more').addEventListener('click', () => search(null, true));
    $('search-close').addEventListener('click', hideSearch);
    $('search-input').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') hideSearch();
    });
    window.addEventListener('hashchange', route);
    window.addEventListener('focus', () => {
      if (state.user || state.token) loadRooms().catch(() => {});
    });
    // Back online or back in view: redial now rather than at the end of the backoff.
    const redialNow = () => {
      const sock = state.sock;
      if (sock && !sock.ws && !sock.closed && sock.readyOnce) reconnect(sock);
    };
    window.addEventListener('online', redialNow);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      redialNow();
      // Messages that came while the tab was hidden are read once it is seen.
      if (state.room) markReadSoon(state.room);
      renderRooms();
    });
    window.addEventListener('pagehide', () => {
      if (state.sock && state.sock.ws) state.sock.ws.close(1000, 'page closed');
    });
  }

  init();
})();
