/**
 * Text → UTF-8 → gzip → the part writer, for compressed exports. Each slice writes its bytes as one gzip
 * member and ends it before its checkpoint, so the carried bytes and uploaded parts always hold whole members;
 * a resumed slice starts a new member. Concatenated members are one gzip file (RFC 1952 §2.2) that gunzip,
 * zlib, Python, Go and Java read whole. The compression is the runtime's own CompressionStream (native zlib).
 */
const utf8 = new TextEncoder();

/** Text is gathered this much at a time before it enters the compressor: fewer, larger chunks. */
const STAGING_BYTES = 256 * 1024;

export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
}

export class GzipMember {
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly pump: Promise<void>;
  private staging = new Uint8Array(STAGING_BYTES);
  private staged = 0;
  private finished = false;
  private textBytes = 0;

  constructor(sink: ByteSink) {
    const stream = new CompressionStream("gzip");
    this.writer = stream.writable.getWriter();
    // The compressed bytes go to the sink as they come, so memory stays bounded by the compressor's buffers.
    this.pump = (async () => {
      const reader = stream.readable.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        await sink.write(value);
      }
    })();
    // Surfaced by finish(); never an unhandled rejection in between.
    this.pump.catch(() => {});
  }

  /** Uncompressed bytes accepted so far. */
  get textAccepted(): number {
    return this.textBytes;
  }

  /** Same contract as the part writer's: a promise only when the text had to be handed on. */
  writeText(text: string): Promise<void> | undefined {
    const { read, written } = utf8.encodeInto(text, this.staging.subarray(this.staged));
    this.staged += written;
    this.textBytes += written;
    if (read < text.length) return this.flushThen(text.slice(read));
    return this.staged === this.staging.byteLength ? this.flush() : undefined;
  }

  private async flushThen(rest: string): Promise<void> {
    await this.flush();
    // A string longer than the staging buffer (never in practice: one record) goes in whole.
    const bytes = utf8.encode(rest);
    if (bytes.byteLength > this.staging.byteLength) {
      this.textBytes += bytes.byteLength;
      return this.writer.write(bytes);
    }
    await this.writeText(rest);
  }

  private async flush(): Promise<void> {
    if (this.staged === 0) return;
    const chunk = this.staging.slice(0, this.staged);
    this.staged = 0;
    await this.writer.write(chunk);
  }

  /** Ends the member: every compressed byte has reached the sink when this resolves. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.flush();
    await this.writer.close();
    await this.pump;
  }
}
