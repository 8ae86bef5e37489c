// Package state is the ledger's deterministic application: the transaction format (signing, decoding,
// signature verification, one at a time and in batches), the genesis of the application state, and the
// state machine that executes decided blocks (accounts with balances and nonces, transfers, fees), keeps a
// transaction index and commits to an app hash after every block.
//
// It never does network I/O, starts goroutines, reads a clock or draws a random number that affects a
// result (batch verification draws random coefficients, which only decide how a signature is checked, never
// whether it is valid). Its only input besides the blocks is the committed state it reads through Reader.
// Integer arithmetic only, no map iteration where order could show, no floats: the same blocks give the same
// bytes on every validator.
//
// # Transactions
//
// A transaction travels as its body followed by a 64-byte Ed25519 signature of the sender over SigningDomain
// ("shoulders/tx/v1\n") and the body bytes exactly as received. The body, big-endian throughout:
//
//	offset  size  field
//	0       1     version (1)
//	1       1     n, the chain ID's length (1..64)
//	2       n     chain ID
//	2+n     32    sender: the raw Ed25519 public key, the same key as the sender's libp2p peer ID
//	34+n    8     nonce: the sender's transaction count before this one (0, 1, 2, ...)
//	42+n    8     fee, paid to the block's proposer
//	50+n    2     kind (1 = transfer, 2..5 = datanet kinds, see Datanets)
//	52+n    ...   the kind's payload, exactly its length; transfer: to (32 bytes), amount (8, positive)
//
// A transaction's hash is SHA-256 of all of its bytes, signature included. A transfer on a 16-byte chain ID
// is 172 bytes. Amounts are uint64 units of the ledger's currency.
//
// Why a hand-written format rather than protobuf: a transaction's bytes are consensus-critical twice over,
// as what validators agree a block contains and as what its hash names. The decoder accepts exactly the
// bytes Sign produces (canonical by construction, which FuzzDecodeTx checks), so one transaction has one
// encoding and one hash, and nobody can re-encode someone else's transaction into another hash; whether a
// transaction decodes can never depend on a protobuf library's version (which field orders, repeated or
// unknown fields, non-minimal varints it tolerates); every length is checked before anything is allocated;
// and decoding is one copy and no reflection. The layout is small enough to document in full, above, for
// clients in other languages. It follows ledger/consensus's encoding for the same reasons. New kinds take the
// next number with a payload layout of their own: a Payload type, an entry in kinds (tx.go) and a case in
// exec.apply (execute.go).
//
// Addresses are the 32-byte Ed25519 key; people see them as the libp2p peer ID ("12D3KooW...", Address.String,
// ParseAddress), which embeds the key. Other key types are refused. KeyFromLibp2p turns a node's libp2p key
// into the crypto/ed25519 key Sign takes.
//
// # Signatures
//
// Signatures are checked under the ZIP-215 rules (github.com/hdevalence/ed25519consensus), like consensus
// votes: the same signatures are valid alone and in a batch, so validators that check a transaction
// differently cannot disagree. VerifyBatch checks many at once, sorted by sender, in batches of 128 with one
// multiscalar multiplication each, grouping the signatures of each sender under one term for its key (ed25519consensus's batch equation with that one
// change, see batchVerify); a failing batch is split in halves to find the bad ones. A Tx remembers that its
// signature verified, so a transaction the mempool admitted is not verified again when its block executes
// (Execute's known argument). On the shared 2-core development machine (figures move with its load), per
// signature: 75-100 µs alone; 30-50 µs in batches of 64 or more from distinct senders, like
// ed25519consensus's own batch verifier; 15-25 µs when 10 senders sign them all.
//
// # Genesis
//
// Genesis is the application's half of the chain's genesis: chain ID, funded accounts, Params (max tx bytes,
// max txs and bytes per block, minimum fee). Its JSON form writes addresses as peer IDs and amounts as decimal
// strings (Amount), so no uint64 loses precision in a JSON reader that uses float64; integers are accepted on
// input and parsed exactly. Genesis.AppHash is the app hash before the first block, which
// consensus.Genesis.AppHash must carry. The total supply must fit a uint64; since it is conserved, no balance
// can ever overflow.
//
// # Execution
//
// The rules, applied to each transaction of a block in order:
//
//   - it is skipped, changing nothing, if it is oversized (Params.MaxTxBytes), malformed, of an unknown kind,
//     for another chain, badly signed, below Params.MinFee, not at its sender's next nonce, or if the sender's
//     balance does not cover amount + fee; its result carries a Code and a Reason that names what was wrong;
//   - otherwise the sender pays amount + fee and its nonce advances by one, the recipient receives the amount,
//     and the block's proposer receives the fee.
//
// Skipped transactions stay in the block (the block is valid; ValidateBlock refuses only blocks that break
// structural limits, do not decode, or carry the wrong app hash) and pay nothing: a skipped transaction cannot
// be charged, since it may not even be its sender's. Fees go to the proposer, which consensus names in the
// header; the driver passes its address (the validator's key is its account). Total supply is therefore
// constant: the tests check it over random blocks, and the invariants build tag checks after every block
// that the balances the block changed sum to what they did before.
//
// # Datanets
//
// A datanet is a named, owned, licensed collection of records (datanet.go). Four kinds:
//
//   - datanet_create (2): name (1..64 of a-z 0-9 . _ -, unique), record type (text or binary), description,
//     licence, up to 8 tags; the sender owns it. A taken name is datanet_exists.
//   - datanet_contribute (3): the datanet and up to Params.MaxRecordsPerTx records, each a CID (CIDv1 over
//     SHA-256: raw codec for at most RawBlockMax bytes, the manifest codec for more) and a size (1 up to
//     Params.MaxRecordBytes). The records become pending, credited to the sender. Identical content is one
//     record per datanet: a record whose CID the datanet already has (pending, approved or rejected) is left
//     out and stays credited to its first contributor; a contribution whose records are all already there
//     is refused as duplicate, so the contributor is told who has them.
//   - datanet_approve (4): owner only (else not_owner); every listed record must be pending (else
//     bad_record, naming it). The records, in the order listed, are appended to the approved list and make
//     version N+1. The version's root is a CIDv1 (raw, SHA-256) over its record list: the header
//     "shoulders-datanet-records/1\n" and one line "<cid> <size> <contributor>\n" per record in approval
//     order (VersionRoot, VersionLine). The ledger keeps the SHA-256 state of the list with the datanet, so
//     an approval costs O(records approved), not O(records in the datanet); anyone holding a version's
//     records can recompute its root.
//   - datanet_reject (5): owner only; pending records become rejected (they stay, so the same content again
//     is a duplicate).
//
// The ledger never sees record bytes: whether a record's content exists, hashes to its CID, has its size
// and (in a text datanet) is UTF-8 is checked by the owner's node, which fetches every record before its
// owner signs an approval. Decoding checks everything that needs no state (names, CIDs, sizes, repeats
// within the transaction); the rules above need state and are applied in order with the block. A refused
// datanet transaction changes nothing, like any other. The datanet state is written beside the accounts
// (keys 'D', 'R', 'Q', 'O', 'V', see datanet.go) and every write is folded into the app hash.
//
// # Two phases, concurrency and storage
//
// Execute computes a block's Result against the committed state and changes nothing anyone sees; the driver
// writes Result.Write into the height's store batch (store.CommitHeight), and only after that batch has
// synced calls Commit, which makes the new state visible. Execute, Commit and ValidateBlock are called by one
// goroutine, the driver, in order; Account, TxResult, AppHash, Height and CheckTx are safe from any
// goroutine at any time. Readers see committed state only: a reader may see an account of height h from the
// store (synced) while Height still says h-1, never anything unsynced.
//
// State lives in the store's application keyspace (layout in app.go): accounts under 'A', the transaction
// index under 'T', and a meta record 'M' with the last height, its app hash and the genesis app hash, written
// with every block, from which New resumes after a restart. Accounts not yet written come from the genesis.
// Recently written accounts are cached in memory (Options.CachedAccounts, two generations); the rest are
// read from the store. The index keeps, for each transaction hash a block carried, its height, position, code
// and reason; a success is never hidden by a later failure of the same bytes.
//
// # App hash
//
// The app hash after block h is SHA-256 of a domain tag, the app hash after h-1, h, the accounts the block
// changed (address, balance, nonce, in the order the block first changed them), every transaction's hash
// and result code, and, when the block changed datanet state, each written key with the SHA-256 of its value
// in first-write order (blockHash). It costs O(changes) per block, not O(accounts), and two validators with the
// same app hash have applied the same changes from the same genesis, so hold the same state. What it does not
// give is a proof about a single account to a client that has not replayed the chain; a Merkle tree over the
// state (for light clients and state sync) can replace it later at a version change. Reasons are left out so
// that rewording an error message never forks the chain; codes are in.
//
// # Limits
//
// DecodeTx refuses more than MaxTxBytes (64 KiB); chains set Params.MaxTxBytes at most that. Chain IDs are
// 1..64 bytes. Genesis parameters are range-checked (Params.Validate); MaxBlockBytes is at most half of
// consensus.MaxBlockBytes, leaving room for the block's framing.
package state
