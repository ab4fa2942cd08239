import { GzipMember } from "./gzip";
import type { R2PartWriter } from "./r2_writer";

/**
 * The file a slice is writing: its part writer, the text sink in front of it (the writer itself, or a gzip
 * member), and what a checkpoint records of it (rows, uncompressed bytes). A split export has one after another.
 */
export class OutputFile {
  readonly sink: R2PartWriter | GzipMember;
  /** Records written into this file (across slices). */
  rows: number;
  private readonly textBefore: number;
  private headWritten: boolean;

  constructor(
    /** 1-based; the number in the name of a split export's file. */
    readonly index: number,
    readonly key: string,
    readonly writer: R2PartWriter,
    gzip: boolean,
    restored: { rows: number; textBytes: number },
  ) {
    // Compressed: this slice's text of the file is one gzip member, ended before a checkpoint (./gzip.ts).
    this.sink = gzip ? new GzipMember(writer) : writer;
    this.rows = restored.rows;
    this.textBefore = restored.textBytes;
    this.headWritten = restored.textBytes > 0 || restored.rows > 0;
  }

  /** Uncompressed bytes of the file so far: what max_file_size limits. */
  get textBytes(): number {
    return this.textBefore + this.sink.textAccepted;
  }

  /** Writes the file's head (a JSON envelope's start, a CSV header) unless it has one. */
  async writeHead(head: string): Promise<void> {
    if (this.headWritten) return;
    this.headWritten = true;
    await this.sink.writeText(head);
  }

  /** Ends the gzip member, if compressed: every byte of this slice's text has then reached the writer. */
  endMember(): Promise<void> {
    return this.sink instanceof GzipMember ? this.sink.finish() : Promise.resolve();
  }
}
