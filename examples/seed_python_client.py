import asyncio
import websockets
import json

async def chat_client():
    uri = "ws://localhost:8001/ws/room_123"
    async with websockets.connect(uri) as websocket:
        # Send message
        await websocket.send(json.dumps({
            "type": "message",
            "content": "Hello from Python!",
            "user_id": "user_456"
        }))
        
        # Listen for messages
        async for message in websocket:
            data = json.loads(message)
            print(f"Received: {data}")

asyncio.run(chat_client())
