/**
 * Throwaway certificates for `shoal dev --tls` and the tests: a CA, a server certificate for
 * `localhost` and `127.0.0.1`, and client certificates, all made by the `openssl` command
 * (P-256 keys, valid for 30 days). Never for production: the CA's key sits beside them.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and its private key, as PEM file paths. */
export interface CertPair {
  cert: string;
  key: string;
}

export interface DevCertificates {
  dir: string;
  /** The CA certificate: the server's `ca_file`, the clients' `--tls-ca`. */
  ca: string;
  /** For nats-server (`localhost`, `127.0.0.1`). */
  server: CertPair;
  /** One client certificate per name asked for (its common name). */
  clients: Record<string, CertPair>;
}

export const DEV_CERT_DAYS = 30;

/**
 * Makes a CA under `dir` (created if missing; files of an earlier run are replaced), a server
 * certificate, and a client certificate for each of `clients`. Throws saying how to install
 * openssl when it is missing.
 */
export function makeDevCertificates(dir: string, clients: string[] = ['client']): DevCertificates {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  openssl([
    'req', '-x509', ...newKey(), '-keyout', caKey, '-out', ca, '-days', String(DEV_CERT_DAYS), '-subj', '/CN=Shoal dev CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const signed = (name: string, cn: string, ext: string): CertPair => {
    const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
    const csr = join(dir, `${name}.csr`);
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, `${ext}\n`);
    openssl(['req', ...newKey(), '-keyout', pair.key, '-out', csr, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', pair.cert, '-days', String(DEV_CERT_DAYS), '-extfile', extFile]);
    rmSync(csr, { force: true });
    rmSync(extFile, { force: true });
    chmodSync(pair.key, 0o600);
    return pair;
  };
  const server = signed('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth');
  const out: Record<string, CertPair> = {};
  for (const name of clients) out[name] = signed(name, name, 'extendedKeyUsage=clientAuth');
  chmodSync(caKey, 0o600);
  return { dir, ca, server, clients: out };
}

function newKey(): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('openssl was not found: install it (`sudo apt-get install -y openssl`) to make TLS certificates');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? e.message}`);
  }
}
