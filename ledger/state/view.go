package state

// TxView is a transaction as the API and the CLI show it. Amounts are decimal strings (Amount); the nonce is
// a JSON number (a nonce counts transactions and stays far below 2^53). Fields of other kinds are empty.
type TxView struct {
	Hash    Hash    `json:"hash"`
	ChainID string  `json:"chain_id"`
	Sender  Address `json:"sender"`
	Nonce   uint64  `json:"nonce"`
	Fee     Amount  `json:"fee"`
	Kind    string  `json:"kind"`
	Size    int     `json:"size"`

	// transfer
	To     *Address `json:"to,omitempty"`
	Amount *Amount  `json:"amount,omitempty"`

	// datanet kinds
	Datanet    string   `json:"datanet,omitempty"`
	RecordType string   `json:"record_type,omitempty"`
	Records    []string `json:"records,omitempty"` // CIDs
}

// View returns the transaction's TxView.
func (t *Tx) View() TxView {
	v := TxView{
		Hash:    t.hash,
		ChainID: t.ChainID,
		Sender:  t.Sender,
		Nonce:   t.Nonce,
		Fee:     Amount(t.Fee),
		Kind:    t.Kind().String(),
		Size:    t.Size(),
	}
	switch p := t.Payload.(type) {
	case *Transfer:
		to, amount := p.To, Amount(p.Amount)
		v.To, v.Amount = &to, &amount
	case *DatanetCreate:
		v.Datanet, v.RecordType = p.Name, p.RecordType.String()
	case *DatanetContribute:
		v.Datanet = p.Datanet
		for _, r := range p.Records {
			v.Records = append(v.Records, cidString(r.CID))
		}
	case *DatanetApprove:
		v.Datanet, v.Records = p.Datanet, cidStrings(p.CIDs)
	case *DatanetReject:
		v.Datanet, v.Records = p.Datanet, cidStrings(p.CIDs)
	}
	return v
}

func cidStrings(cids [][]byte) []string {
	out := make([]string, len(cids))
	for i, c := range cids {
		out[i] = cidString(c)
	}
	return out
}
