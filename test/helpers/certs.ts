/**
 * Test PKI made at run time: a throw-away CA and server certificates signed by it.
 * Nothing is cached or committed; every file lands in the folder the caller gives.
 *
 * Keys come from node:crypto's asynchronous `generateKeyPair` (OpenSSL, on the libuv
 * thread pool, so the CA and server keys are made in parallel without blocking the
 * event loop) and are imported into node-forge only to build and sign the certificates.
 * Measured on the 2-core test machine (RSA 2048): node:crypto ≈ 90–180 ms per key,
 * forge in pure JavaScript ≈ 0.6–several s per key. (forge's own `generateKeyPair`
 * silently delegates to node:crypto unless `forge.options.usePureJavaScript` is set,
 * so calling node:crypto directly is both the fast and the predictable choice.)
 */
import crypto from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';

export interface TestPki {
  /** PEM file of the CA certificate (give it to NODE_EXTRA_CA_CERTS / SSL_CERT_FILE). */
  caCertPath: string;
  /** The CA certificate, PEM. */
  caCert: string;
  serverCertPath: string;
  serverKeyPath: string;
  /** The server certificate, PEM. */
  serverCert: string;
  /** The server private key, PEM (PKCS#1). */
  serverKey: string;
}

export interface TestCa {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  certPem: string;
}

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  /** Extra SubjectAltName IP addresses (none by default). */
  ipAddresses?: string[];
  /** Days the certificate stays valid from now (default 30). Negative makes an expired one. */
  validDays?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

async function rsaKeyPair(): Promise<{ privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey }> {
  const { privateKey } = await new Promise<{ privateKey: string }>((resolve, reject) => {
    crypto.generateKeyPair(
      'rsa',
      {
        modulusLength: 2048,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      },
      (err, _publicKey, privateKeyPem) => (err ? reject(err) : resolve({ privateKey: privateKeyPem })),
    );
  });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

function randomSerial(): string {
  // 16 random bytes, high bit cleared so that the DER INTEGER stays positive.
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, validDays: number): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + validDays * DAY_MS);
}

/** A self-signed RSA 2048 CA, kept in memory only. */
export async function createTestCa(commonName = 'xmpp-onion-proxy test CA'): Promise<TestCa> {
  const { privateKey, publicKey } = await rsaKeyPair();
  return buildCa(commonName, privateKey, publicKey);
}

function buildCa(commonName: string, privateKey: forge.pki.rsa.PrivateKey, publicKey: forge.pki.rsa.PublicKey): TestCa {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, 30);
  const attrs = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'xmpp-onion-proxy tests' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return { cert, key: privateKey, certPem: forge.pki.certificateToPem(cert) };
}

/** A server certificate for `names` (SubjectAltName dNSName each, CN = first name), signed by `ca`. */
export async function issueServerCert(ca: TestCa, names: string[], opts: IssueOptions = {}): Promise<IssuedCert> {
  return buildServerCert(ca, names, await rsaKeyPair(), opts);
}

function buildServerCert(
  ca: TestCa,
  names: string[],
  keys: { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey },
  opts: IssueOptions,
): IssuedCert {
  const first = names[0];
  if (first === undefined) throw new Error('issueServerCert: at least one DNS name is needed');
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, opts.validDays ?? 30);
  cert.setSubject([{ name: 'commonName', value: first }]);
  cert.setIssuer(ca.cert.subject.attributes);
  const altNames: Array<{ type: number; value?: string; ip?: string }> = names.map((value) => ({ type: 2, value }));
  for (const ip of opts.ipAddresses ?? []) altNames.push({ type: 7, ip });
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/**
 * Makes a CA and one server certificate for every name in `names` (e.g. `example.test`,
 * `conference.example.test`, `*.example.test`) and writes `ca.crt`, `server.crt` and
 * `server.key` (mode 0600) into `dir` (created if needed). The CA key is never written.
 */
export async function createTestPki(dir: string, names: string[], opts: IssueOptions = {}): Promise<TestPki> {
  if (names.length === 0) throw new Error('createTestPki: at least one DNS name is needed');
  await mkdir(dir, { recursive: true });
  // Both keys at once: the thread pool has room for two RSA generations in parallel.
  const [caKeys, serverKeys] = await Promise.all([rsaKeyPair(), rsaKeyPair()]);
  const ca = buildCa('xmpp-onion-proxy test CA', caKeys.privateKey, caKeys.publicKey);
  const server = buildServerCert(ca, names, serverKeys, opts);
  const caCertPath = path.join(dir, 'ca.crt');
  const serverCertPath = path.join(dir, 'server.crt');
  const serverKeyPath = path.join(dir, 'server.key');
  await Promise.all([
    writeFile(caCertPath, ca.certPem),
    writeFile(serverCertPath, server.certPem),
    writeFile(serverKeyPath, server.keyPem, { mode: 0o600 }),
  ]);
  return {
    caCertPath,
    caCert: ca.certPem,
    serverCertPath,
    serverKeyPath,
    serverCert: server.certPem,
    serverKey: server.keyPem,
  };
}
