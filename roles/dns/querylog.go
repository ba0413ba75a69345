package dns

import (
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// queryLogRate is how many query lines a second the log takes; beyond it
// queries are counted, and one line says how many went unlogged.
const queryLogRate = 100

// logStages are the stage names in query lines: an admin's words, where
// the counters' are the pipeline's (access is "refused").
var logStages = [numStages]string{"dropped", "server", "refused", "special", "local", "cache", "stale", "forward", "overload"}

// queryLog writes one line per query when Config.LogQueries is on
// (dnsmasq's log-queries): client, name, type, rcode and the stage that
// answered. It lives as long as the Server; a pipeline holds it only when
// the config turns it on, so with it off each answer pays one nil check.
type queryLog struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	second  int64 // the Unix second being counted
	lines   int   // lines written in it
	skipped int   // queries not logged in it
	timer   *time.Timer
}

func newQueryLog(log *slog.Logger) *queryLog {
	return &queryLog{log: log, now: time.Now}
}

// query logs one answered query, or counts it when the second's lines are
// spent.
func (l *queryLog) query(client netip.Addr, name string, qtype uint16, rcode int, by stageID) {
	sec := l.now().Unix()
	l.mu.Lock()
	if sec != l.second {
		l.rollLocked(sec)
	}
	if l.lines >= queryLogRate {
		if l.skipped == 0 {
			l.armLocked()
		}
		l.skipped++
		l.mu.Unlock()
		return
	}
	l.lines++
	l.mu.Unlock()
	l.log.Info("query", "client", client.String(), "name", name, "type", typeName(qtype),
		"rcode", rcodeName(rcode), "stage", logStages[by])
}

// rollLocked starts second sec, saying first how many queries the last one
// left unlogged.
func (l *queryLog) rollLocked(sec int64) {
	if l.skipped > 0 {
		l.log.Info("queries not logged", "count", l.skipped, "limit_per_second", queryLogRate)
	}
	l.second, l.lines, l.skipped = sec, 0, 0
}

// armLocked makes sure the summary of this second is written even if no
// query follows it.
func (l *queryLog) armLocked() {
	if l.timer != nil {
		l.timer.Reset(time.Second)
		return
	}
	l.timer = time.AfterFunc(time.Second, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if sec := l.now().Unix(); sec != l.second {
			l.rollLocked(sec)
		}
	})
}

// logQuestion logs a query answered before the pipeline (FORMERR, NOTIMP,
// BADVERS, REFUSED for a zone transfer), when the log is on.
func (p *pipeline) logQuestion(client netip.Addr, q []dns.Question, rcode int, by stageID) {
	if p == nil || p.qlog == nil {
		return
	}
	var name string
	var qtype uint16
	if len(q) > 0 {
		name, qtype = lowerName(q[0].Name), q[0].Qtype
	}
	p.qlog.query(client, name, qtype, rcode, by)
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rcode)
}
