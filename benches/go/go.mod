module hijack/bench/go

go 1.24
