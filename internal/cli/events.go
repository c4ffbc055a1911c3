package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/natterim/natter"
	"github.com/natterim/natter/client"
	"github.com/natterim/natter/wire"
)

// Event types, as --json's "type" field and --only name them.
const (
	evMessage    = "message"
	evReceipt    = "receipt"
	evPresence   = "presence"
	evContact    = "contact"
	evReach      = "reach"
	evConnection = "connection"
	evPath       = "path"
	evKeys       = "keys"
)

var eventTypes = []string{evMessage, evReceipt, evPresence, evContact, evReach, evConnection, evPath, evKeys}

// withOpenErr puts, in place of the body of a message that could not be
// opened, a note saying why.
func withOpenErr(m wire.Message, err error) wire.Message {
	if err != nil {
		m.Body = []byte("[this message could not be opened: " + err.Error() + "]")
	}
	return m
}

// jsonKeys is a change of a contact's end-to-end keys.
type jsonKeys struct {
	Type     string            `json:"type"`
	User     natter.UserID     `json:"user"`
	Devices  []natter.DeviceID `json:"devices"`
	Pending  []natter.DeviceID `json:"pending,omitempty"`
	Changed  bool              `json:"changed,omitempty"`
	Verified bool              `json:"verified,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// parseOnly parses --only: a comma-separated list of event types. Empty
// means every type.
func parseOnly(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	only := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if !isEventType(t) {
			return nil, fmt.Errorf("--only: unknown event type %q (use %s)", t, strings.Join(eventTypes, ", "))
		}
		only[t] = true
	}
	return only, nil
}

func isEventType(t string) bool {
	for _, k := range eventTypes {
		if k == t {
			return true
		}
	}
	return false
}

// eventPrinter prints events for listen and chat: one line of text each, or
// one JSON object each with --json.
type eventPrinter struct {
	r      *runner
	me     natter.UserID
	device natter.DeviceID
	only   map[string]bool // nil: everything

	shownPath map[natter.UserID]string // human output: the path last shown per peer
}

func (p *eventPrinter) wants(t string) bool { return p.only == nil || p.only[t] }

// print prints ev and returns how many events it printed (an InboxEvent
// holds many, a ContactsEvent, the list sent at every login, none).
func (p *eventPrinter) print(ev client.Event) int {
	switch ev := ev.(type) {
	case client.MessageEvent:
		return p.message(withOpenErr(ev.Message, ev.OpenErr), ev.Offline, ev.Path)
	case client.KeysEvent:
		if !p.wants(evKeys) {
			return 0
		}
		if p.r.g.json {
			j := jsonKeys{Type: evKeys, User: ev.User, Devices: ev.Devices, Pending: ev.Pending, Changed: ev.Changed, Verified: ev.Verified}
			if ev.Err != nil {
				j.Error = ev.Err.Error()
			}
			p.r.emit(j)
		} else {
			p.r.printf("%s\n", keysEventText(ev, p.me))
		}
		return 1
	case client.ReceiptEvent:
		return p.receipt(ev.Rcpt)
	case client.InboxEvent:
		n := 0
		for _, g := range ev.Groups {
			for _, m := range g.Messages {
				path := client.PathServer
				if m.Direct {
					path = client.PathDirect
				}
				n += p.message(withOpenErr(m.Message, ev.OpenErrs[m.ID]), true, path)
			}
			for _, rc := range g.Receipts {
				n += p.receipt(rc)
			}
		}
		return n
	case client.PresenceEvent:
		if !p.wants(evPresence) {
			return 0
		}
		if p.r.g.json {
			p.r.emit(jsonPresence{Type: evPresence, User: ev.User, Status: ev.Status, Text: ev.Text, LastSeen: utc(ev.LastSeen)})
		} else {
			// "now": last seen, which is also now for a user going offline,
			// would say nothing more.
			p.r.printf("%s is now %s\n", ev.User, presenceText(ev.Status, ev.Text, time.Time{}, p.r.now()))
		}
		return 1
	case client.ContactEvent:
		if !p.wants(evContact) {
			return 0
		}
		if p.r.g.json {
			jc := toJSONContact(ev.Contact)
			jc.State = jsonState(jc.State)
			p.r.emit(jsonContactEvent{Type: evContact, jsonContact: jc})
		} else {
			p.r.printf("%s\n", contactChangeText(ev.Contact))
		}
		return 1
	case client.ReachEvent:
		if !p.wants(evReach) {
			return 0
		}
		if p.r.g.json {
			cands := ev.Candidates
			if cands == nil {
				cands = []natter.Candidate{}
			}
			p.r.emit(jsonReach{Type: evReach, User: ev.User, Device: ev.Device, Candidates: cands})
		} else if !p.r.g.verbose {
			// Connection info is for the software (peer to peer), not for
			// the screen: --json and --verbose show it.
			return 0
		} else if len(ev.Candidates) == 0 {
			p.r.printf("%s's device %s is no longer reachable directly\n", ev.User, ev.Device)
		} else {
			addrs := make([]string, len(ev.Candidates))
			for i, c := range ev.Candidates {
				addrs[i] = c.Proto + " " + c.Addr
			}
			p.r.printf("%s's device %s can be reached at %s\n", ev.User, ev.Device, strings.Join(addrs, ", "))
		}
		return 1
	case client.PathEvent:
		return p.path(ev.Peer, ev.Path, ev.RTT, ev.Err)
	case client.ConnEvent:
		if !p.wants(evConnection) {
			return 0
		}
		if p.r.g.json {
			j := jsonConn{Type: evConnection, Up: ev.Up}
			if ev.Err != nil {
				j.Error, _ = describe(ev.Err)
				j.Error = firstLine(j.Error)
			}
			p.r.emit(j)
		} else if ev.Up {
			p.r.printf("(connection back)\n")
		} else if !ev.Final {
			p.r.printf("(%s)\n", connLostText(ev.Err, p.r.g.verbose))
		}
		return 1
	}
	return 0
}

// message prints one message, unless it is one this device sent.
func (p *eventPrinter) message(m wire.Message, offline bool, path string) int {
	if !p.wants(evMessage) || p.ownEcho(m) {
		return 0
	}
	if p.r.g.json {
		j := toJSONMessage(m)
		j.Type, j.Offline, j.Path = evMessage, offline, path
		p.r.emit(j)
		return 1
	}
	p.r.printf("%s\n", p.messageLine(m))
	return 1
}

// ownEcho reports whether m was sent from this very device (a previous run
// of natter): the user has seen it already.
func (p *eventPrinter) ownEcho(m wire.Message) bool {
	return m.From == p.me && (m.FromDevice == p.device || m.FromDevice == "")
}

// messageLine formats a message: "[15:04] bob: hello", or for the user's
// own messages from another device "[15:04] you → bob: hello".
func (p *eventPrinter) messageLine(m wire.Message) string {
	who := string(m.From)
	if m.From == p.me {
		who = "you → " + string(m.To)
	}
	text := strings.ReplaceAll(messageText(m.Body), "\n", "\n    ")
	return fmt.Sprintf("[%s] %s: %s", when(m.SentAt, p.r.now()), who, text)
}

// receipt prints a receipt for the user's messages. Receipts the user's
// own devices sent are bookkeeping and are not shown.
func (p *eventPrinter) receipt(rc wire.Rcpt) int {
	if !p.wants(evReceipt) || rc.From == p.me {
		return 0
	}
	if p.r.g.json {
		j := toJSONReceipt(rc)
		j.Type = evReceipt
		p.r.emit(j)
		return 1
	}
	p.r.printf("%s\n", receiptText(rc))
	return 1
}

func receiptText(rc wire.Rcpt) string {
	if rc.State == natter.ReceiptRead {
		return fmt.Sprintf("%s has read your messages", rc.From)
	}
	return fmt.Sprintf("%s has received your messages", rc.From)
}

func contactChangeText(c wire.Contact) string {
	switch c.State {
	case natter.ContactPendingIn:
		return fmt.Sprintf("%s asks to be your contact: natter accept %s", c.User, c.User)
	case natter.ContactPendingOut:
		return fmt.Sprintf("you asked %s to be your contact", c.User)
	case natter.ContactApproved:
		return fmt.Sprintf("%s is now your contact", c.User)
	case natter.ContactBlocked:
		return fmt.Sprintf("you blocked %s", c.User)
	}
	return fmt.Sprintf("%s is no longer your contact", c.User)
}

// inboxGroups sorts kept entries into groups by sender, in order of first
// appearance, dropping duplicates (an entry delivered twice) and what the
// user has seen already (messages sent from this device, the user's own
// receipts).
func inboxGroups(entries []unreadEntry, me natter.UserID, device natter.DeviceID) []wire.InboxGroup {
	p := eventPrinter{me: me, device: device}
	var groups []wire.InboxGroup
	index := map[natter.UserID]int{}
	seenMsg := map[natter.MessageID]bool{}
	group := func(from natter.UserID) *wire.InboxGroup {
		i, ok := index[from]
		if !ok {
			i = len(groups)
			index[from] = i
			groups = append(groups, wire.InboxGroup{From: from})
		}
		return &groups[i]
	}
	sort.SliceStable(entries, func(i, j int) bool { return entryTime(entries[i]) < entryTime(entries[j]) })
	for _, e := range entries {
		switch {
		case e.Message != nil:
			m := *e.Message
			if seenMsg[m.ID] || p.ownEcho(m) {
				continue
			}
			seenMsg[m.ID] = true
			g := group(m.From)
			g.Messages = append(g.Messages, wire.Msg{Seq: e.Seq, Message: m})
		case e.Receipt != nil:
			rc := *e.Receipt
			if rc.From == me {
				continue
			}
			g := group(rc.From)
			g.Receipts = mergeReceipt(g.Receipts, rc)
		}
	}
	return groups
}

// mergeReceipt adds rc to a sender's receipts, keeping only what says
// most: receipts are cumulative, so one per state, the highest, and no
// "delivered" receipt that a "read" one covers.
func mergeReceipt(rs []wire.Rcpt, rc wire.Rcpt) []wire.Rcpt {
	var read, delivered *wire.Rcpt
	for _, r := range append(rs, rc) {
		r := r
		// The later of two receipts with the same Upto says at least as
		// much: it may name a newer message by ID (one that went peer to
		// peer has Upto 0).
		switch {
		case r.State == natter.ReceiptRead && (read == nil || r.Upto > read.Upto || r.Upto == read.Upto && !r.At.Before(read.At)):
			read = &r
		case r.State != natter.ReceiptRead && (delivered == nil || r.Upto > delivered.Upto || r.Upto == delivered.Upto && !r.At.Before(delivered.At)):
			delivered = &r
		}
	}
	var out []wire.Rcpt
	if delivered != nil && (read == nil || delivered.Upto > read.Upto) {
		out = append(out, *delivered)
	}
	if read != nil {
		out = append(out, *read)
	}
	return out
}

// entryTime orders kept entries: by when the server accepted them.
func entryTime(e unreadEntry) int64 {
	if e.Message != nil {
		return e.Message.SentAt.UnixNano()
	}
	return e.Receipt.At.UnixNano()
}

// path prints which path a conversation takes now, and its round-trip
// time for a peer-to-peer channel; err says why it is not direct, if known.
func (p *eventPrinter) path(peer natter.UserID, path string, rtt time.Duration, err error) int {
	if !p.wants(evPath) {
		return 0
	}
	if p.r.g.json {
		j := jsonPath{Type: evPath, Peer: peer, Path: path}
		if path != client.PathServer {
			j.RTTms = float64(rtt.Microseconds()) / 1000
		}
		if err != nil {
			j.Error = firstLine(err.Error())
		}
		p.r.emit(j)
		return 1
	}
	// People see where the conversation goes, once per change: a failed
	// attempt while it already goes through the server changes nothing
	// they need to know (--verbose shows it, with why).
	if p.shownPath == nil {
		p.shownPath = map[natter.UserID]string{}
	}
	before, shown := p.shownPath[peer]
	p.shownPath[peer] = path
	switch path {
	case client.PathDirect:
		p.r.printf("(%s: direct connection, round trip %s)\n", peer, rtt.Round(100*time.Microsecond))
	case client.PathRelayed:
		p.r.printf("(%s: connected through the server's relay, round trip %s)\n", peer, rtt.Round(100*time.Microsecond))
	default:
		switch {
		case p.r.g.verbose && err != nil:
			p.r.printf("(%s: messages go through the server: %s)\n", peer, firstLine(err.Error()))
		case shown && before == client.PathServer:
			return 0
		case shown:
			p.r.printf("(%s: the direct connection closed; messages go through the server)\n", peer)
		default:
			p.r.printf("(%s: messages go through the server)\n", peer)
		}
	}
	return 1
}

// connLostText says that the connection to natterd dropped, and why in
// words, not as an error chain (which --verbose adds).
func connLostText(err error, verbose bool) string {
	var we *wire.Err
	why := "connection to the server lost"
	if errors.As(err, &we) {
		switch we.Code {
		case wire.CodeShutdown:
			why = "the server is restarting"
		case wire.CodeSlowConsumer:
			why = "the server dropped the connection: messages were not read fast enough"
		case wire.CodeTimeout:
			why = "the server stopped hearing from this device"
		}
	}
	if verbose && err != nil {
		return fmt.Sprintf("%s; reconnecting: %v", why, err)
	}
	return why + "; reconnecting"
}

// jsonPath is a "path" event: how messages to Peer travel now.
type jsonPath struct {
	Type  string        `json:"type"`
	Peer  natter.UserID `json:"peer"`
	Path  string        `json:"path"`             // direct, relayed or server
	RTTms float64       `json:"rtt_ms,omitempty"` // round trip of a peer-to-peer channel
	Error string        `json:"error,omitempty"`  // why not direct, if known
}
