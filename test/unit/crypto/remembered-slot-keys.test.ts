/**
 * rememberSlotKeys (src/crypto/keys.ts): a replica reopens its engine with copies of one passphrase
 * credential; the slot key derived by the first open is reused by the copies (no scrypt), and goes
 * (zeroed) when the owner is wiped, not when a copy is.
 */
import { describe, expect, it } from 'vitest';
import {
  createKeySet,
  makeCredential,
  openKeyring,
  rememberSlotKeys,
  sealKeyring,
  wipeCredential,
  type Credential,
} from '../../../src/crypto/keys.js';
import { nodeProvider } from '../../../src/crypto/node-provider.js';
import { hex } from '../../helpers/bytes.js';

const context = { provider: nodeProvider, providerTimeoutMs: 1000, now: () => 1_700_000_000_000 };
const passphrase = (text: string): Credential =>
  makeCredential({ kind: 'passphrase', passphrase: new TextEncoder().encode(text), scrypt: { logN: 10, r: 8, p: 1 } });

/** A copy whose passphrase bytes are overwritten: it opens the keyring only if no KDF runs on them. */
function copyWithForgottenPassphrase(owner: Credential): Credential {
  const copy = makeCredential(owner);
  if (copy.kind === 'passphrase') copy.passphrase.fill(0x41);
  return copy;
}

describe('rememberSlotKeys', () => {
  it('copies of a remembered credential open with the slot key derived once; wiping the owner forgets it', async () => {
    const keyring = sealKeyring(await createKeySet(passphrase('replica secret'), context));
    const owner = passphrase('replica secret');
    rememberSlotKeys(owner);
    const first = makeCredential(owner);
    const opened = await openKeyring(keyring, first, context);
    // The engine wipes its copy after the open: the remembered key stays.
    wipeCredential(first);

    const again = await openKeyring(keyring, copyWithForgottenPassphrase(owner), context);
    expect(hex(again.entries().metaKey)).toBe(hex(opened.entries().metaKey));

    wipeCredential(owner);
    await expect(openKeyring(keyring, copyWithForgottenPassphrase(owner), context)).rejects.toMatchObject({ code: 'ARMDB_WRONG_KEY' });
  });

  it('a credential not remembered runs the KDF at every open', async () => {
    const keyring = sealKeyring(await createKeySet(passphrase('not remembered'), context));
    const owner = passphrase('not remembered');
    await openKeyring(keyring, makeCredential(owner), context);
    await expect(openKeyring(keyring, copyWithForgottenPassphrase(owner), context)).rejects.toMatchObject({ code: 'ARMDB_WRONG_KEY' });
  });
});
