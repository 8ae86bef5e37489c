package sim

// eventKind is what happens at an event.
type eventKind uint8

const (
	evDeliver   eventKind = iota // a message arrives at node to
	evSync                       // a bundle of commits arrives at node to (block sync)
	evPropose                    // node to's driver answers its proposal request
	evCrash                      // node to crashes
	evRestart                    // node to restarts from its crashed storage
	evPartition                  // the network splits (sides) or, with heal set, joins again
	evGST                        // global stabilisation: faults stop
)

type event struct {
	at     int64 // virtual milliseconds
	seq    uint64
	kind   eventKind
	from   int
	to     int
	junk   bool // a Byzantine validator's garbage: must never be accepted
	data   []byte
	bundle [][]byte
	height uint64
	round  int32
	sides  []bool
	id     int
}

// queue is a binary min-heap of events by (time, sequence): equal times keep the order they were scheduled
// in, which keeps runs deterministic.
type queue struct {
	ev  []event
	seq uint64
}

func (q *queue) less(i, j int) bool {
	a, b := &q.ev[i], &q.ev[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.ev = append(q.ev, e)
	for i := len(q.ev) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.ev[i], q.ev[p] = q.ev[p], q.ev[i]
		i = p
	}
}

func (q *queue) len() int { return len(q.ev) }

func (q *queue) top() *event { return &q.ev[0] }

func (q *queue) pop() event {
	e := q.ev[0]
	last := len(q.ev) - 1
	q.ev[0] = q.ev[last]
	q.ev[last] = event{}
	q.ev = q.ev[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q.ev) && q.less(l, m) {
			m = l
		}
		if r < len(q.ev) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.ev[i], q.ev[m] = q.ev[m], q.ev[i]
		i = m
	}
	return e
}
