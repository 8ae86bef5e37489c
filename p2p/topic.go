package p2p

import (
	"context"
	"errors"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrIgnore marks a validation error as "drop quietly": the message is not forwarded, and the peer that sent
// it is not penalised (it may be late, or a duplicate in other bytes), unlike any other error, which rejects
// the message and counts against its sender.
var ErrIgnore = errors.New("ignored")

// GossipTopic is a topic of this node's network other than the announcement kinds (the ledger's transaction
// batches, say), joined with its own validator. Messages that pass validation reach Deliver.
type GossipTopic struct {
	n       *Network
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	deliver func(from peer.ID, v any)
}

// TopicOption tunes a topic's validation.
type TopicOption = pubsub.ValidatorOpt

// ValidationConcurrency bounds the messages of a topic validated at once; past it, messages are dropped
// (throttled, without penalty to their sender). For topics whose validation is costly: gossipsub's own
// bound is in the thousands.
func ValidationConcurrency(n int) TopicOption { return pubsub.WithValidatorConcurrency(n) }

// JoinTopic joins /shoulders/<network>/<name>/1. validate decodes and checks every message, before it is
// forwarded: it returns the decoded value (given to deliver) or an error (wrap ErrIgnore to drop without
// penalty). The caller must Run the topic to have messages delivered. Messages this node publishes are
// validated too but not delivered back to it.
func (n *Network) JoinTopic(name string, validate func(from peer.ID, data []byte) (any, error), deliver func(from peer.ID, v any), opts ...TopicOption) (*GossipTopic, error) {
	full := "/shoulders/" + n.cfg.Network + "/" + name + "/1"
	n.labels.Lock()
	n.labels.m[full] = name
	n.labels.Unlock()
	err := n.ps.RegisterTopicValidator(full, func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		v, err := validate(from, m.Data)
		if err != nil {
			code := "invalid"
			if errors.Is(err, ErrIgnore) {
				code = "ignored"
			}
			m.ValidatorData = rejection{code: code, err: err}
			if errors.Is(err, ErrIgnore) {
				return pubsub.ValidationIgnore
			}
			return pubsub.ValidationReject
		}
		m.ValidatorData = v
		return pubsub.ValidationAccept
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: validator for %s: %w", full, err)
	}
	t, err := n.ps.Join(full)
	if err != nil {
		return nil, fmt.Errorf("p2p: join %s: %w", full, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		return nil, fmt.Errorf("p2p: score parameters for %s: %w", full, err)
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(subscriberBuffer))
	if err != nil {
		return nil, fmt.Errorf("p2p: subscribe %s: %w", full, err)
	}
	return &GossipTopic{n: n, topic: t, sub: sub, deliver: deliver}, nil
}

// Publish gossips data on the topic. It fails if this node's own validator refuses it.
func (g *GossipTopic) Publish(ctx context.Context, data []byte) error {
	return g.topic.Publish(ctx, data)
}

// Name is the topic's full name.
func (g *GossipTopic) Name() string { return g.topic.String() }

// Run delivers the topic's messages from other nodes until ctx ends.
func (g *GossipTopic) Run(ctx context.Context) error {
	defer g.sub.Cancel()
	self := g.n.host.ID()
	for {
		m, err := g.sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("p2p: reading %s: %w", g.topic, err)
		}
		if m.ReceivedFrom == self {
			continue
		}
		g.deliver(m.ReceivedFrom, m.ValidatorData)
	}
}
