//go:build race

package guest

const raceNote = ", race detector on: inflated"
