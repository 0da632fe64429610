import { currentCredential } from './client';

export interface StreamEvent {
  event: string;
  data: string;
}

/**
 * Reads a Server-Sent Events answer with fetch (EventSource cannot send an Authorization header) and
 * calls `onEvent` per event until the server ends the stream or `signal` aborts. Resolves when it ends.
 */
export async function readEventStream(
  url: string,
  onEvent: (event: StreamEvent) => void,
  signal: AbortSignal,
): Promise<number> {
  const credential = currentCredential();
  const response = await fetch(url, {
    headers: { Accept: 'text/event-stream', ...(credential ? { Authorization: `Bearer ${credential}` } : {}) },
    signal,
  });
  if (!response.ok || !response.body) return response.status;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return response.status;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) onEvent({ event, data: data.join('\n') });
    }
  }
}
