declare module 'gifenc' {
  export interface GifEncoder {
    writeFrame(index: Uint8Array, width: number, height: number, opts?: { palette?: number[][]; delay?: number; repeat?: number; transparent?: boolean; dispose?: number }): void;
    finish(): void;
    bytes(): Uint8Array;
  }
  /** gifenc's CommonJS build (its "main"): Node's ESM loader sees module.exports as the default export only */
  const gifenc: { GIFEncoder(opts?: { auto?: boolean; initialCapacity?: number }): GifEncoder };
  export default gifenc;
}
