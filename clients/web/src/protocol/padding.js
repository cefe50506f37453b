/**
 * Size buckets and ISO/IEC 7816-4 padding (SPEC.md 4.4).
 *
 * The bucket of a plaintext of length n is the smallest power of two that is at least
 * MIN_BUCKET and greater than n; the plaintext is followed by 0x80 and zero bytes up to
 * the bucket size. Unpadding is strict: any other form is `bad_padding`.
 */
import { AccordError, ErrorCode } from './errors.js';

export const MIN_BUCKET = 256;
export const MAX_BUCKET = 1048576;
/** The largest plaintext an entry can carry. */
export const MAX_PLAINTEXT = MAX_BUCKET - 1;
const MARKER = 0x80;

/**
 * The bucket size for a plaintext of `length` bytes.
 * @throws {AccordError} `oversized` above MAX_PLAINTEXT
 */
export function bucketFor(length) {
  if (length > MAX_PLAINTEXT) {
    throw new AccordError(ErrorCode.OVERSIZED, `a plaintext is at most ${MAX_PLAINTEXT} bytes`);
  }
  let bucket = MIN_BUCKET;
  while (bucket <= length) bucket *= 2;
  return bucket;
}

/** `pad(P)`: P, 0x80, then zeros up to its bucket. @throws {AccordError} `oversized` */
export function pad(plaintext) {
  const padded = new Uint8Array(bucketFor(plaintext.length));
  padded.set(plaintext);
  padded[plaintext.length] = MARKER;
  return padded;
}

/**
 * Strip the padding of a padded plaintext.
 * @throws {AccordError} `bad_padding` when the length is not a bucket size, the padding
 *   is not of the 7816-4 form, or the plaintext would fit a smaller bucket
 */
export function unpad(padded) {
  const size = padded.length;
  if (size < MIN_BUCKET || size > MAX_BUCKET || (size & (size - 1)) !== 0) {
    throw new AccordError(ErrorCode.BAD_PADDING, 'the padded length is not a bucket size');
  }
  let end = size - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (end < 0 || padded[end] !== MARKER) {
    throw new AccordError(ErrorCode.BAD_PADDING, 'no 0x80 marker before the zero bytes');
  }
  if (bucketFor(end) !== size) {
    throw new AccordError(ErrorCode.BAD_PADDING, 'padded to a larger bucket than needed');
  }
  return padded.slice(0, end);
}
