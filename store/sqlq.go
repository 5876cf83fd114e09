package store

import (
	"context"
	"strconv"
	"strings"
)

// where builds a parameterised WHERE clause. bun interpolates arguments into
// the SQL text, which makes every query with a new id or cursor a new
// statement for PostgreSQL; the hot read paths use real bind parameters
// instead, so that pgx's statement cache serves them with one round trip.
type where struct {
	conds []string
	args  []any
}

// and adds a condition written with ? placeholders.
func (w *where) and(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// in adds "col IN (?, ?, ...)" for values.
func in[T ~string](w *where, col string, values []T) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = string(v)
	}
	w.and(col+" IN ("+marks+")", args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// rebind turns ? placeholders into PostgreSQL's $1, $2, ... The SQL built
// here never holds a literal question mark.
func (s *Store) rebind(q string) string {
	if !s.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// queryIncidents runs a parameterised SELECT of incidentColumns. Rows are
// scanned by hand: bun's reflective mapping was a third of a list's CPU.
func (s *Store) queryIncidents(ctx context.Context, q string, args ...any) ([]incidentRow, error) {
	s.stmts.Add(1)
	rows, err := s.db.DB.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incidentRow
	for rows.Next() {
		var r incidentRow
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Title, &r.Description, &r.Severity, &r.SeverityRank,
			&r.Status, &r.StatusRank, &r.Service, &r.Tags, &r.OccurredAt, &r.ResolvedAt,
			&r.CreatedAt, &r.UpdatedAt, &r.CreatedBy, &r.UpdatedBy, &r.IsDeleted, &r.PhaseGen, &r.PhaseOrder); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// scalar runs a parameterised query that returns one integer.
func (s *Store) scalar(ctx context.Context, q string, args ...any) (int64, error) {
	s.stmts.Add(1)
	var n int64
	err := s.db.DB.QueryRowContext(ctx, s.rebind(q), args...).Scan(&n)
	return n, err
}
