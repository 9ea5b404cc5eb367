/* Reason phrases of the status lines the gateway writes (h1_head.c). */
#ifndef TG_HTTP_RESPONSE_H
#define TG_HTTP_RESPONSE_H

/* Standard reason phrase, "Unknown" for codes we never send. */
const char *tg_http_reason(int status);

#endif
