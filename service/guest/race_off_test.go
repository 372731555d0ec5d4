//go:build !race

package guest

const raceNote = ""
