package auth

// lru is a bounded map that forgets its least recently used entry when full.
// Not safe for concurrent use: Cache holds its lock around every call.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*node[K, V]
	head  node[K, V] // sentinel: head.next is the most recent, head.prev the least
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next *node[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	l := &lru[K, V]{max: max, items: make(map[K]*node[K, V])}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}

func (l *lru[K, V]) unlink(n *node[K, V]) { n.prev.next, n.next.prev = n.next, n.prev }

func (l *lru[K, V]) pushFront(n *node[K, V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}

// get returns key's value and marks it recently used.
func (l *lru[K, V]) get(key K) (V, bool) {
	n, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	l.unlink(n)
	l.pushFront(n)
	return n.val, true
}

// put stores key's value, evicting the least recently used entry if full.
func (l *lru[K, V]) put(key K, val V) {
	if n, ok := l.items[key]; ok {
		n.val = val
		l.unlink(n)
		l.pushFront(n)
		return
	}
	if len(l.items) >= l.max {
		old := l.head.prev
		l.unlink(old)
		delete(l.items, old.key)
	}
	n := &node[K, V]{key: key, val: val}
	l.items[key] = n
	l.pushFront(n)
}

func (l *lru[K, V]) remove(key K) {
	if n, ok := l.items[key]; ok {
		l.unlink(n)
		delete(l.items, key)
	}
}

func (l *lru[K, V]) len() int { return len(l.items) }
