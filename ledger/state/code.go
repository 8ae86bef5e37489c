package state

import (
	"errors"
	"fmt"
	"strconv"
)

// Code classifies the outcome of a transaction: CodeOK when it was applied, otherwise why it was refused
// (by the mempool or the API) or skipped (in a block). Codes are stored in the transaction index and covered
// by the app hash, so their numbers are part of the protocol: never renumber them; new codes take the next
// number.
type Code uint8

// The codes. A skipped transaction changes nothing but its own index entry.
const (
	CodeOK                Code = 0
	CodeMalformed         Code = 1  // the bytes are not a canonical transaction
	CodeOversized         Code = 2  // more bytes than the chain's max_tx_bytes
	CodeUnknownKind       Code = 3  // a kind this software does not know
	CodeWrongChain        Code = 4  // signed for another chain
	CodeBadSignature      Code = 5  // the signature does not verify under the sender's key
	CodeFeeTooLow         Code = 6  // fee below the chain's min_fee
	CodeBadNonce          Code = 7  // not the sender's next nonce
	CodeInsufficientFunds Code = 8  // the sender cannot pay amount + fee
	CodeDatanetExists     Code = 9  // a datanet of that name exists
	CodeNoDatanet         Code = 10 // no datanet of that name
	CodeNotOwner          Code = 11 // only the datanet's owner may do that
	CodeBadRecord         Code = 12 // a record is over a limit, not in the datanet, or not pending
	CodeDuplicate         Code = 13 // every record contributed is already in the datanet
	numCodes              Code = 14
)

var codeNames = [numCodes]string{
	CodeOK:                "ok",
	CodeMalformed:         "malformed",
	CodeOversized:         "oversized",
	CodeUnknownKind:       "unknown_kind",
	CodeWrongChain:        "wrong_chain",
	CodeBadSignature:      "bad_signature",
	CodeFeeTooLow:         "fee_too_low",
	CodeBadNonce:          "bad_nonce",
	CodeInsufficientFunds: "insufficient_funds",
	CodeDatanetExists:     "datanet_exists",
	CodeNoDatanet:         "no_such_datanet",
	CodeNotOwner:          "not_owner",
	CodeBadRecord:         "bad_record",
	CodeDuplicate:         "duplicate",
}

// String returns the code's stable name ("bad_nonce"), as the API and the CLI show it.
func (c Code) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// MarshalText writes the code's name.
func (c Code) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a code's name.
func (c *Code) UnmarshalText(b []byte) error {
	for i, n := range codeNames {
		if n == string(b) {
			*c = Code(i)
			return nil
		}
	}
	return fmt.Errorf("state: unknown result code %q", b)
}

// Error is why a transaction was refused or skipped: its Code, and a Reason that names the field at fault,
// what it held and what is allowed ("nonce 7, the sender's next nonce is 5").
type Error struct {
	Code   Code
	Reason string
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return "state: " + e.Code.String()
	}
	return "state: " + e.Code.String() + ": " + e.Reason
}

// Is makes errors.Is(err, ErrBadNonce) (and the other sentinels) match any Error with that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Code == e.Code
}

// Sentinels for errors.Is, one per code.
var (
	ErrMalformed         = &Error{Code: CodeMalformed}
	ErrOversized         = &Error{Code: CodeOversized}
	ErrUnknownKind       = &Error{Code: CodeUnknownKind}
	ErrWrongChain        = &Error{Code: CodeWrongChain}
	ErrBadSignature      = &Error{Code: CodeBadSignature}
	ErrFeeTooLow         = &Error{Code: CodeFeeTooLow}
	ErrBadNonce          = &Error{Code: CodeBadNonce}
	ErrInsufficientFunds = &Error{Code: CodeInsufficientFunds}
	ErrDatanetExists     = &Error{Code: CodeDatanetExists}
	ErrNoDatanet         = &Error{Code: CodeNoDatanet}
	ErrNotOwner          = &Error{Code: CodeNotOwner}
	ErrBadRecord         = &Error{Code: CodeBadRecord}
	ErrDuplicate         = &Error{Code: CodeDuplicate}
)

// ErrStore wraps a failure to read the application's state from the store: an I/O problem of this node, not
// a fault of the transaction (the API answers it with a 500, not a 400).
var ErrStore = errors.New("state: store read failed")

func refuse(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Reason: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code of an *Error in err's chain: CodeOK for nil, and false for an error that is not
// about a transaction (a store failure).
func CodeOf(err error) (Code, bool) {
	if err == nil {
		return CodeOK, true
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
