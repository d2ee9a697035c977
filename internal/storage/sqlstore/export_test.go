package sqlstore

// Query returns the named query as the store runs it, rebound for its
// dialect.
func (s *Store) Query(name string) string { return s.q[name] }
