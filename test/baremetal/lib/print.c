/*
 * Serial output on the first 16550 UART (I/O 0x3F8) and a small printf, plus the string
 * functions GCC may call on its own even in freestanding code (memset/memcpy/memcmp).
 *
 * Output is polled: each byte waits for LSR.THRE (transmit holding register empty), so
 * nothing depends on interrupts and a test that crashes right after printing has still sent
 * its last line. Newlines are sent as a bare '\n' so the runner's output matches line by line.
 */
#include "runtime.h"

#define COM1 0x3f8
enum { UART_THR = 0, UART_IER = 1, UART_FCR = 2, UART_LCR = 3, UART_MCR = 4, UART_LSR = 5 };
#define UART_LCR_DLAB 0x80
#define UART_LSR_THRE 0x20

void serial_init(void)
{
	outb(COM1 + UART_IER, 0);		/* polled: no UART interrupts */
	outb(COM1 + UART_LCR, UART_LCR_DLAB);
	outb(COM1 + UART_THR, 1);		/* divisor 1 = 115200 baud (low byte) */
	outb(COM1 + UART_IER, 0);		/* divisor high byte */
	outb(COM1 + UART_LCR, 0x03);		/* 8 data bits, no parity, 1 stop bit */
	outb(COM1 + UART_FCR, 0x07);		/* FIFOs on and cleared */
	outb(COM1 + UART_MCR, 0x03);		/* DTR, RTS */
}

void putchar(int c)
{
	while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE))
		pause();
	outb(COM1 + UART_THR, (u8)c);
}

void *memset(void *d, int c, size_t n)
{
	u8 *p = d;
	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *p = d;
	const u8 *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (u8)*a - (u8)*b;
		if (!*a)
			break;
	}
	return 0;
}

const char *strstr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncmp(hay, needle, n))
			return hay;
	return n ? NULL : hay;
}

/* ---- formatting --------------------------------------------------------------------------- */

/* Where formatted characters go: the serial port, or a buffer for snprintf. */
struct sink {
	char *buf;
	size_t size, len;
};

static void emit(struct sink *s, char c)
{
	if (!s->buf)
		putchar(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void emit_padded(struct sink *s, const char *text, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;
	if (!left && pad == '0' && n && (*text == '-')) {
		/* zero padding goes after the sign */
		emit(s, *text++);
		n--;
	}
	if (!left)
		while (fill--)
			emit(s, pad);
	while (n--)
		emit(s, *text++);
	if (left)
		while (fill-- > 0)
			emit(s, ' ');
}

/* Supports %d %i %u %x %X %p %s %c %% with optional '-', '0', width and l/ll/z length. */
static int format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			emit(s, *fmt);
			continue;
		}
		bool left = false;
		char pad = ' ';
		int width = 0, longs = 0;
		for (fmt++;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l' || *fmt == 'z'; fmt++)
			longs++;

		char tmp[24];
		char *end = tmp + sizeof(tmp), *p = end;
		u64 v;
		switch (*fmt) {
		case 'd':
		case 'i': {
			s64 sv = longs ? va_arg(ap, s64) : va_arg(ap, int);
			v = sv < 0 ? -(u64)sv : (u64)sv;
			do
				*--p = '0' + v % 10;
			while (v /= 10);
			if (sv < 0)
				*--p = '-';
			emit_padded(s, p, end - p, width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'p': {
			unsigned base = *fmt == 'u' ? 10 : 16;
			const char *digits = *fmt == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
			if (*fmt == 'p')
				v = (u64)va_arg(ap, void *);
			else
				v = longs ? va_arg(ap, u64) : va_arg(ap, unsigned);
			do
				*--p = digits[v % base];
			while (v /= base);
			if (*fmt == 'p') {
				*--p = 'x';
				*--p = '0';
			}
			emit_padded(s, p, end - p, width, left, pad);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			emit_padded(s, str, strlen(str), width, left, ' ');
			break;
		}
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			emit_padded(s, tmp, 1, width, left, ' ');
			break;
		case '%':
			emit(s, '%');
			break;
		default:		/* unknown conversion: show it rather than guess */
			emit(s, '%');
			if (*fmt)
				emit(s, *fmt);
			else
				fmt--;
		}
	}
	return (int)s->len;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { 0 };
	return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { buf, size, 0 };
	format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = 0;
	return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
