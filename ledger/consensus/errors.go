package consensus

import "errors"

// Errors Step returns for messages it ignores. Each is also counted (Counters.Dropped) under its DropReason.
var (
	ErrNotValidator  = errors.New("consensus: validator index not in the validator set")
	ErrBadSignature  = errors.New("consensus: bad signature")
	ErrOldHeight     = errors.New("consensus: message for a height already decided")
	ErrFutureHeight  = errors.New("consensus: message for a height beyond the next one")
	ErrFarRound      = errors.New("consensus: message for a round beyond the lookahead")
	ErrDuplicate     = errors.New("consensus: duplicate message")
	ErrConflict      = errors.New("consensus: message conflicts with one the validator signed before (evidence)")
	ErrBufferFull    = errors.New("consensus: too many next-height messages held for this validator")
	ErrInvalidCommit = errors.New("consensus: commit does not verify")
)

// DropReason is why Step ignored a message.
type DropReason uint8

// The reasons a message is ignored. DropConflict messages are reported as evidence (once per validator,
// height, round and step) before they are dropped.
const (
	DropMalformed DropReason = iota
	DropNotValidator
	DropBadSignature
	DropOldHeight
	DropFutureHeight
	DropFarRound
	DropDuplicate
	DropConflict
	DropBufferFull
	DropInvalidCommit
	NumDropReasons
)

var dropErrors = [NumDropReasons]error{
	DropMalformed:     ErrMalformed,
	DropNotValidator:  ErrNotValidator,
	DropBadSignature:  ErrBadSignature,
	DropOldHeight:     ErrOldHeight,
	DropFutureHeight:  ErrFutureHeight,
	DropFarRound:      ErrFarRound,
	DropDuplicate:     ErrDuplicate,
	DropConflict:      ErrConflict,
	DropBufferFull:    ErrBufferFull,
	DropInvalidCommit: ErrInvalidCommit,
}

var dropNames = [NumDropReasons]string{
	DropMalformed:     "malformed",
	DropNotValidator:  "not_validator",
	DropBadSignature:  "bad_signature",
	DropOldHeight:     "old_height",
	DropFutureHeight:  "future_height",
	DropFarRound:      "far_round",
	DropDuplicate:     "duplicate",
	DropConflict:      "conflict",
	DropBufferFull:    "buffer_full",
	DropInvalidCommit: "invalid_commit",
}

// String returns a short snake_case name, fit for a bounded metric label.
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Counters tell a driver what the core did with its input. They only ever grow.
type Counters struct {
	Accepted    uint64                 // messages that changed what the core knows
	Dropped     [NumDropReasons]uint64 // messages ignored, by reason
	Evidence    uint64                 // evidence reported
	SignRefused uint64                 // signatures the double-sign guard refused (expected after a restart)
	Decided     uint64                 // heights decided
}
