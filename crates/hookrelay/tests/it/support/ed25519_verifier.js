// An independent check of hookrelay's `v1a` signatures: Node's own crypto (no npm package).
// Reads {public_keys, id, timestamp, body_b64, signature} on stdin and prints, for each public
// key, whether any `v1a,` entry of the signature header verifies over "{id}.{timestamp}.{body}".
const crypto = require('crypto');
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const { public_keys, id, timestamp, body_b64, signature } = JSON.parse(input);
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), Buffer.from(body_b64, 'base64')]);
  const entries = signature.split(' ').filter((e) => e.startsWith('v1a,'));
  const results = public_keys.map((pk) => {
    if (!pk.startsWith('whpk_')) return false;
    const raw = Buffer.from(pk.slice(5), 'base64');
    if (raw.length !== 32) return false;
    const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    return entries.some((e) => crypto.verify(null, signed, key, Buffer.from(e.slice(4), 'base64')));
  });
  process.stdout.write(JSON.stringify(results));
});
