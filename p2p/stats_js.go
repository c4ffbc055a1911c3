//go:build js

package p2p

import (
	"syscall/js"
	"time"
)

// iceStat is what Path and RTT read of one entry of an RTCStatsReport:
// a transport, a candidate pair or a candidate.
type iceStat struct {
	id  string
	typ string // "transport", "candidate-pair", "local-candidate", ...

	selectedPair string // transport: selectedCandidatePairId

	localID, remoteID string  // candidate-pair: localCandidateId, remoteCandidateId
	state             string  // candidate-pair: "succeeded", ...
	nominated         bool    // candidate-pair
	selected          bool    // candidate-pair: Firefox's own flag
	rtt               float64 // candidate-pair: currentRoundTripTime, seconds
	totalRTT          float64 // candidate-pair: totalRoundTripTime, seconds
	responses         int     // candidate-pair: responsesReceived

	candidateType string // local- or remote-candidate: "host", "srflx", "prflx", "relay"
	address       string // local- or remote-candidate: address (or the older ip)
	port          int
}

// roundTrip is a candidate pair's round-trip time: the current one, else
// the mean over its responses, else 0.
func (s iceStat) roundTrip() time.Duration {
	switch {
	case s.rtt > 0:
		return time.Duration(s.rtt * float64(time.Second))
	case s.totalRTT > 0 && s.responses > 0:
		return time.Duration(s.totalRTT / float64(s.responses) * float64(time.Second))
	}
	return 0
}

// readStats reads the entries of an RTCStatsReport (a maplike) that
// selectedPair needs.
func readStats(report js.Value) []iceStat {
	if report.Type() != js.TypeObject {
		return nil
	}
	values := js.Global().Get("Array").Call("from", report.Call("values"))
	var stats []iceStat
	for i := range values.Length() {
		v := values.Index(i)
		if v.Type() != js.TypeObject {
			continue
		}
		s := iceStat{id: jsString(v, "id"), typ: jsString(v, "type")}
		switch s.typ {
		case "transport":
			s.selectedPair = jsString(v, "selectedCandidatePairId")
		case "candidate-pair":
			s.localID = jsString(v, "localCandidateId")
			s.remoteID = jsString(v, "remoteCandidateId")
			s.state = jsString(v, "state")
			s.nominated = jsBool(v, "nominated")
			s.selected = jsBool(v, "selected")
			s.rtt = jsNumber(v, "currentRoundTripTime")
			s.totalRTT = jsNumber(v, "totalRoundTripTime")
			s.responses = int(jsNumber(v, "responsesReceived"))
		case "local-candidate", "remote-candidate":
			s.candidateType = jsString(v, "candidateType")
			s.address = jsString(v, "address")
			if s.address == "" {
				s.address = jsString(v, "ip")
			}
			s.port = int(jsNumber(v, "port"))
		default:
			continue
		}
		stats = append(stats, s)
	}
	return stats
}

// selectedPair finds the selected candidate pair and its candidates: the
// one a transport names (selectedCandidatePairId), else the one Firefox
// marks selected, else a nominated pair that succeeded.
func selectedPair(stats []iceStat) (pair, local, remote iceStat, ok bool) {
	byID := make(map[string]iceStat, len(stats))
	for _, s := range stats {
		byID[s.id] = s
	}
	found := false
	for _, s := range stats {
		if s.typ == "transport" && s.selectedPair != "" {
			if pair, found = byID[s.selectedPair]; found {
				break
			}
		}
	}
	if !found {
		pair, found = firstPair(stats, func(s iceStat) bool { return s.selected })
	}
	if !found {
		pair, found = firstPair(stats, func(s iceStat) bool { return s.nominated && s.state == "succeeded" })
	}
	if !found || pair.typ != "candidate-pair" {
		return iceStat{}, iceStat{}, iceStat{}, false
	}
	local, lok := byID[pair.localID]
	remote, rok := byID[pair.remoteID]
	if !lok || !rok {
		return iceStat{}, iceStat{}, iceStat{}, false
	}
	return pair, local, remote, true
}

func firstPair(stats []iceStat, want func(iceStat) bool) (iceStat, bool) {
	for _, s := range stats {
		if s.typ == "candidate-pair" && want(s) {
			return s, true
		}
	}
	return iceStat{}, false
}

func jsString(v js.Value, key string) string {
	if f := v.Get(key); f.Type() == js.TypeString {
		return f.String()
	}
	return ""
}

func jsNumber(v js.Value, key string) float64 {
	if f := v.Get(key); f.Type() == js.TypeNumber {
		return f.Float()
	}
	return 0
}

func jsBool(v js.Value, key string) bool {
	f := v.Get(key)
	return f.Type() == js.TypeBoolean && f.Bool()
}
