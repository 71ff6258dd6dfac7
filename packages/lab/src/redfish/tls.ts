/**
 * The simulated BMCs' certificate, made fresh at every start so no private
 * key lives in the repository. Clients verify against it as their CA bundle,
 * exactly as they would against a site's own CA.
 */
import { generate } from 'selfsigned';

export interface LabCertificate {
  certPem: string;
  keyPem: string;
}

export async function makeBmcCertificate(): Promise<LabCertificate> {
  const pems = await generate([{ name: 'commonName', value: 'firebreak-lab-bmc' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 30 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
  return { certPem: pems.cert, keyPem: pems.private };
}
