/**
 * Fashion-MNIST from Debian's `dataset-fashion-mnist` (install: `bash scripts/setup.sh --bench`):
 * 60,000 base and 10,000 query images of 28×28 uint8 pixels (784 dimensions, compared by L2),
 * with class labels 0–9. Vectors are returned as float32 in SharedArrayBuffers so worker
 * threads can read them without copies.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const FASHION_MNIST_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

export interface Dataset {
  dim: number;
  train: Float32Array;
  trainLabels: Uint8Array;
  test: Float32Array;
  testLabels: Uint8Array;
}

function readIdx(name: string): { dims: number[]; data: Uint8Array } {
  const path = join(FASHION_MNIST_DIR, name);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: install Fashion-MNIST with \`bash scripts/setup.sh --bench\` (Debian package dataset-fashion-mnist) or set FASHION_MNIST_DIR`);
  }
  const buf = gunzipSync(readFileSync(path));
  const ndim = buf[3] as number;
  if (buf[2] !== 0x08) throw new Error(`${name}: not an unsigned-byte idx file`);
  const dims = Array.from({ length: ndim }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  return { dims, data: buf.subarray(4 + 4 * ndim) };
}

function toShared(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(bytes.length * 4));
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] as number;
  return out;
}

export function loadFashionMnist(): Dataset {
  const train = readIdx('train-images-idx3-ubyte.gz');
  const test = readIdx('t10k-images-idx3-ubyte.gz');
  const dim = (train.dims[1] as number) * (train.dims[2] as number);
  return {
    dim,
    train: toShared(train.data),
    trainLabels: readIdx('train-labels-idx1-ubyte.gz').data.slice(),
    test: toShared(test.data),
    testLabels: readIdx('t10k-labels-idx1-ubyte.gz').data.slice(),
  };
}

export function row(data: Float32Array, dim: number, i: number): Float32Array {
  return data.subarray(i * dim, (i + 1) * dim);
}
