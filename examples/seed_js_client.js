// The seed's JavaScript client with one fix (browsers, or Node 22+ with a global
// WebSocket): the seed calls ws.send() right after `new WebSocket(...)`, while the
// socket is still connecting, which throws InvalidStateError and sends nothing;
// here the message is sent from `onopen`. Everything else is the seed's code.
// Connect to chat room
const ws = new WebSocket('ws://localhost:8001/ws/room_123');

// Send message
ws.onopen = () => ws.send(JSON.stringify({
    type: 'message',
    content: 'Hello, everyone!',
    user_id: 'user_123'
}));

// Receive messages
ws.onmessage = function(event) {
    const data = JSON.parse(event.data);
    console.log('Received:', data);
};
