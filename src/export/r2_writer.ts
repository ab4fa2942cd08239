/**
 * Streams a file into R2 in parts of exactly `partSize` bytes (R2 requires every part but the last to be the
 * same size, at least 5 MiB). Bytes that do not yet fill a part are carried: a checkpoint saves them, and a
 * writer restored from that checkpoint continues the same multipart upload.
 *
 * Memory: two part buffers, so one part uploads while the next fills.
 */
const utf8 = new TextEncoder();

export interface UploadedPart {
  partNumber: number;
  etag: string;
}

export interface WriterState {
  uploadId: string | null;
  parts: UploadedPart[];
  carry: Uint8Array;
}

export interface WriterOptions {
  partSize: number;
  httpMetadata: R2HTTPMetadata;
  customMetadata: Record<string, string>;
  /** Called after each part is stored in R2 (tests use it to fail at that point). */
  onPartUploaded?: (part: UploadedPart) => Promise<void> | void;
}

export class R2PartWriter {
  private buffer: Uint8Array;
  private spare: Uint8Array;
  private filled: number;
  private uploadId: string | null;
  private readonly parts: UploadedPart[];
  private upload: R2MultipartUpload | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  private acceptedBytes = 0;
  private started = 0;

  constructor(
    private readonly bucket: R2Bucket,
    private readonly key: string,
    private readonly options: WriterOptions,
    state: WriterState,
  ) {
    if (state.carry.byteLength >= options.partSize) throw new Error("carried bytes must be less than one part");
    this.buffer = new Uint8Array(options.partSize);
    this.spare = new Uint8Array(options.partSize);
    this.buffer.set(state.carry);
    this.filled = state.carry.byteLength;
    this.uploadId = state.uploadId;
    this.parts = [...state.parts];
  }

  /** Parts this writer has begun to upload (since it was created or restored). */
  get partsStarted(): number {
    return this.started;
  }

  /** Bytes this writer has accepted since it was created or restored. */
  get accepted(): number {
    return this.acceptedBytes;
  }

  /** The same, as a text sink: written uncompressed, the text's bytes are the file's. */
  get textAccepted(): number {
    return this.acceptedBytes;
  }

  /**
   * Encodes text as UTF-8 straight into the part buffer: no intermediate string or byte array per page.
   * Returns a promise only when a part had to be sent, so the caller awaits only then.
   */
  writeText(text: string): Promise<void> | undefined {
    const { read, written } = utf8.encodeInto(text, this.buffer.subarray(this.filled));
    this.filled += written;
    this.acceptedBytes += written;
    if (read < text.length) return this.writeTextAcrossParts(text.slice(read));
    return this.filled === this.buffer.byteLength ? this.sendFullPart() : undefined;
  }

  private async writeTextAcrossParts(rest: string): Promise<void> {
    while (rest.length > 0) {
      if (this.filled === this.buffer.byteLength) await this.sendFullPart();
      const { read, written } = utf8.encodeInto(rest, this.buffer.subarray(this.filled));
      this.filled += written;
      this.acceptedBytes += written;
      rest = rest.slice(read);
      if (rest.length > 0 && this.filled < this.buffer.byteLength) {
        // The next character needs more bytes than the part has left: split them across the boundary.
        const width = rest.codePointAt(0)! > 0xffff ? 2 : 1;
        await this.write(utf8.encode(rest.slice(0, width)));
        rest = rest.slice(width);
      }
    }
    if (this.filled === this.buffer.byteLength) await this.sendFullPart();
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.acceptedBytes += bytes.byteLength;
    let offset = 0;
    while (offset < bytes.byteLength) {
      const take = Math.min(this.buffer.byteLength - this.filled, bytes.byteLength - offset);
      this.buffer.set(bytes.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.buffer.byteLength) await this.sendFullPart();
    }
  }

  /** Waits for uploads under way and returns what a checkpoint must save. */
  async state(): Promise<WriterState> {
    await this.inFlight;
    return { uploadId: this.uploadId, parts: [...this.parts], carry: this.buffer.slice(0, this.filled) };
  }

  /**
   * Uploads what is left as the last part. The file is then whole in the upload, and `complete` stores it.
   * A file smaller than one part never starts a multipart upload: `complete` stores it with one put.
   */
  async sendLastPart(): Promise<WriterState> {
    await this.inFlight;
    if (this.uploadId && this.filled > 0) {
      await this.uploadPart(this.parts.length + 1, this.buffer.slice(0, this.filled));
      this.filled = 0;
    }
    return this.state();
  }

  /** Stores the object. Call after `sendLastPart`. */
  async complete(): Promise<number> {
    await this.inFlight;
    if (!this.uploadId) {
      const object = await this.bucket.put(this.key, this.buffer.subarray(0, this.filled), {
        httpMetadata: this.options.httpMetadata,
        customMetadata: this.options.customMetadata,
      });
      return object.size;
    }
    const object = await this.multipart().complete(this.parts);
    return object.size;
  }

  private multipart(): R2MultipartUpload {
    if (!this.upload) this.upload = this.bucket.resumeMultipartUpload(this.key, this.uploadId!);
    return this.upload;
  }

  private async sendFullPart(): Promise<void> {
    await this.inFlight;
    if (!this.uploadId) {
      const upload = await this.bucket.createMultipartUpload(this.key, {
        httpMetadata: this.options.httpMetadata,
        customMetadata: this.options.customMetadata,
      });
      this.upload = upload;
      this.uploadId = upload.uploadId;
    }
    this.started++;
    const full = this.buffer;
    this.buffer = this.spare;
    this.spare = full;
    this.filled = 0;
    // The previous upload has finished (awaited above), so the parts list is current.
    const upload = this.uploadPart(this.parts.length + 1, full);
    upload.catch(() => {}); // surfaced by the next await of inFlight, not as an unhandled rejection
    this.inFlight = upload;
  }

  private async uploadPart(partNumber: number, bytes: Uint8Array): Promise<void> {
    const part = await this.multipart().uploadPart(partNumber, bytes);
    this.parts.push({ partNumber: part.partNumber, etag: part.etag });
    await this.options.onPartUploaded?.(part);
  }
}

/**
 * Aborts an export's multipart uploads (the current one, and one a restart left behind), best effort: one
 * already completed or aborted is fine, and R2 aborts incomplete uploads after 7 days anyway.
 */
export async function abortUploads(bucket: R2Bucket, key: string, uploadIds: ReadonlyArray<string | null>): Promise<void> {
  for (const uploadId of uploadIds) {
    if (!uploadId) continue;
    try {
      await bucket.resumeMultipartUpload(key, uploadId).abort();
    } catch {
      // Already completed or aborted.
    }
  }
}
