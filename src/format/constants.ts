/** Format constants. docs/format.md §1 gives the version history. */

/**
 * Format version 1: of the first tag files (whose data files hold records of version 1, 8-byte
 * aligned) and of the identity block of the hint-file header. A file of a version its reader does not
 * know is refused.
 */
export const FORMAT_VERSION = 1;

/**
 * Tag-file versions (docs/format.md §5.2). The version of a tag file is also the record version of its
 * data file (§4.6): 1 has records aligned to 8 bytes, 2 to 4 bytes. Both are read; new files are 2.
 */
export const TagFileVersion = { aligned8: 1, aligned4: 2 } as const;
export type TagFileVersionId = (typeof TagFileVersion)[keyof typeof TagFileVersion];

/** The tag-file version new data files are written with. */
export const TAG_FILE_FORMAT_VERSION: TagFileVersionId = TagFileVersion.aligned4;

/**
 * The MANIFEST versions this code reads (docs/format.md §7). A version-1 or version-2 store keeps its
 * version until the first barrier that writes a MANIFEST, which replaces it with a version-3 one (§1.4).
 */
export const ManifestVersion = {
  /** One MAC; 4 reserved bytes where version 2 keeps its MAC count (§7.2). */
  singleMac: 1,
  /** A count of MACs, so that a MANIFEST can be signed under the current and the next manifest MAC key while the meta key rotates (§7.4). */
  macCount: 2,
  /**
   * The version-2 MANIFEST as a base snapshot, followed by appended, chained, authenticated delta
   * records (§7.7); file entries also record the commit journal of an active file (§7.3, §6A).
   */
  log: 3,
} as const;
export type ManifestFormatVersion = (typeof ManifestVersion)[keyof typeof ManifestVersion];

/** The MANIFEST version new stores are written in. */
export const MANIFEST_FORMAT_VERSION = ManifestVersion.log;

/** Every data file is a sequence of pages of exactly this many bytes (docs/format.md §3). */
export const PAGE_BYTES = 4096;

/** Bytes of one authentication tag (AES-GCM tag, or CRC-32 plus zeros without encryption). */
export const TAG_BYTES = 16;

/** Bytes of a MAC or digest (HMAC-SHA256 / SHA-256). */
export const MAC_BYTES = 32;

/** Bytes of a per-file salt for HKDF. */
export const SALT_BYTES = 32;

/** Bytes of the random database id. */
export const DATABASE_ID_BYTES = 16;

/** Bytes of every data key, key-encryption key and file key. */
export const KEY_BYTES = 32;

/** Page-cipher algorithms, as stored in tag-file headers and the manifest. */
export const Algorithm = {
  /** No confidentiality: pages in clear, each protected by CRC-32 over AAD and page. */
  none: 0,
  /** AES-256-GCM, 12-byte nonce, 16-byte tag. */
  aes256gcm: 1,
} as const;
export type AlgorithmId = (typeof Algorithm)[keyof typeof Algorithm];

export function isAlgorithmId(value: number): value is AlgorithmId {
  return value === Algorithm.none || value === Algorithm.aes256gcm;
}

/** What a sealed unit belongs to; bound into keys and AAD so one kind can never pass for another. */
export const FileKind = {
  data: 1,
  hint: 2,
  /** The commit journal of an active data file (docs/format.md §6a). */
  journal: 3,
} as const;
export type FileKindId = (typeof FileKind)[keyof typeof FileKind];

/** Limits that every length read from disk is checked against before it sizes an allocation. */
export const Limits = {
  maxKeyBytes: 1024,
  maxShards: 256,
  /** Largest value the format can hold; `maxValueBytes` may lower it. */
  maxValueBytes: 512 * 2 ** 20,
  /** Largest data file; record offsets are u32. */
  maxFileBytes: 2 ** 31,
  /** Largest number of files a manifest may list. */
  maxManifestFiles: 1_000_000,
  /** Largest number of data keys a keyring may hold. */
  maxKeyringKeys: 65_536,
  /** Largest hint chunk plaintext. */
  maxHintChunkBytes: 1 * 2 ** 20,
} as const;

const encoder = new TextEncoder();

/** ASCII magic numbers, 8 bytes each. */
export const Magic = {
  tagHeader: encoder.encode('ARMDBTAG'),
  tagFooter: encoder.encode('ARMDBEND'),
  hintHeader: encoder.encode('ARMDBHNT'),
  manifest: encoder.encode('ARMDBMAN'),
  keyring: encoder.encode('ARMDBKEY'),
  journal: encoder.encode('ARMDBJNL'),
} as const;
