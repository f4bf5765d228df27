package testutil

// MapState is an in-memory host.StateStore for tests: writes apply at once.
type MapState map[string][]byte

func (m MapState) Get(k []byte) ([]byte, bool, error) { v, ok := m[string(k)]; return v, ok, nil }
func (m MapState) Put(k, v []byte) error              { m[string(k)] = append([]byte{}, v...); return nil }
func (m MapState) Delete(k []byte) error              { delete(m, string(k)); return nil }
