package mempool

// senderHeap is a binary heap of senders, by their ready key (Reap's order: the highest fee first, then the
// earliest arrival) or by their tail key (eviction's order: the lowest fee first, then the latest arrival).
// Each sender keeps its position in the heap (readyIdx or tailIdx, -1 when not in it), so it can be fixed
// or removed in O(log n). Keys are copied into the sender (rekey) so that comparisons touch nothing else.
type senderHeap struct {
	s    []*sender
	tail bool // ordered by tail key; otherwise by ready key
}

func (h *senderHeap) less(a, b *sender) bool {
	if h.tail {
		return a.tailFee < b.tailFee || a.tailFee == b.tailFee && a.tailSeq > b.tailSeq
	}
	return a.readyFee > b.readyFee || a.readyFee == b.readyFee && a.readySeq < b.readySeq
}

func (h *senderHeap) setIdx(s *sender, i int) {
	if h.tail {
		s.tailIdx = i
	} else {
		s.readyIdx = i
	}
}

func (h *senderHeap) len() int { return len(h.s) }

func (h *senderHeap) top() *sender { return h.s[0] }

func (h *senderHeap) push(s *sender) {
	h.setIdx(s, len(h.s))
	h.s = append(h.s, s)
	h.up(len(h.s) - 1)
}

func (h *senderHeap) pop() *sender {
	s := h.s[0]
	h.remove(0)
	return s
}

// remove takes the sender at position i out of the heap.
func (h *senderHeap) remove(i int) {
	last := len(h.s) - 1
	s := h.s[i]
	if i != last {
		h.swap(i, last)
	}
	h.s[last] = nil
	h.s = h.s[:last]
	h.setIdx(s, -1)
	if i != last {
		h.fix(i)
	}
}

// fix restores the order after the key of the sender at position i changed.
func (h *senderHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *senderHeap) swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	h.setIdx(h.s[i], i)
	h.setIdx(h.s[j], j)
}

func (h *senderHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.s[i], h.s[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts the sender at i down and reports whether it moved.
func (h *senderHeap) down(i int) bool {
	start := i
	n := len(h.s)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h.less(h.s[r], h.s[c]) {
			c = r
		}
		if !h.less(h.s[c], h.s[i]) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}
