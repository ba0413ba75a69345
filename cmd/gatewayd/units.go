package main

import (
	"fmt"
	"time"
)

// num is a count in SI units: 999, 1.2 k, 34.5 k, 678 k, 1.2 M.
func num(n uint64) string {
	return scaled(float64(n), 1000, []string{"", " k", " M", " G", " T", " P"})
}

// size is a byte count in IEC units: 512 B, 1.2 KiB, 3.4 MiB.
func size(n uint64) string {
	return scaled(float64(n), 1024, []string{" B", " KiB", " MiB", " GiB", " TiB", " PiB"})
}

func scaled(v, base float64, units []string) string {
	i := 0
	// Scaled values show at most three digits: 999.6 k is 1.0 M.
	for i < len(units)-1 && (v >= base || i > 0 && v >= 999.5) {
		v /= base
		i++
	}
	switch {
	case i == 0:
		return fmt.Sprintf("%.0f%s", v, units[0])
	case v < 99.95:
		return fmt.Sprintf("%.1f%s", v, units[i])
	default:
		return fmt.Sprintf("%.0f%s", v, units[i])
	}
}

// human is an uptime to the two largest units: 45s, 3m12s, 4h05m, 3d04h.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
