module hijack/peers/go

go 1.24
