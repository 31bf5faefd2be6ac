/*
 * cli: `dnswarden passwd` and `dnswarden token`, which make the secrets
 * that http.users and http.tokens hold (a crypt(3) hash, the SHA-256 of a
 * token), so that no plain password or token is ever written to the
 * configuration.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "http_internal.h"

#define TOKEN_BYTES	32

int
http_passwd_cmd(int argc, char **argv)
{
	char			 line[1024], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data	*cd;
	const char		*hash;
	size_t			 len;

	if (argc > 1) {
		fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ?
		    stdout : stderr, "usage: dnswarden passwd < PASSWORD\n"
		    "Read a password (one line) on standard input and print"
		    " its crypt(3)\nhash (yescrypt), for the password: of an"
		    " http.users entry.\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "dnswarden passwd: no password on standard"
		    " input\n");
		return 1;
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len < 8) {
		fprintf(stderr, "dnswarden passwd: use at least 8"
		    " characters\n");
		return 1;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL ||
	    crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL ||
	    (hash = crypt_rn(line, salt, cd, sizeof(*cd))) == NULL ||
	    hash[0] == '*') {
		fprintf(stderr, "dnswarden passwd: crypt(3) failed\n");
		free(cd);
		return 1;
	}
	printf("%s\n", hash);
	explicit_bzero(line, sizeof(line));
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return 0;
}

int
http_token_cmd(int argc, char **argv)
{
	const char	*name = argc > 1 ? argv[1] : "prometheus";
	const char	*role = argc > 2 ? argv[2] : "metrics";
	char		 token[2 * TOKEN_BYTES + 1], hex[2 * 32 + 1];
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;

	if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
		fprintf(argc == 2 && strcmp(argv[1], "--help") == 0 ?
		    stdout : stderr, "usage: dnswarden token [NAME [ROLE]]\n"
		    "Print a new random bearer token and the line to paste"
		    " under http.tokens\n(default NAME prometheus, ROLE"
		    " metrics). Only its SHA-256 goes into the file.\n");
		return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	if (strcmp(role, "admin") != 0 && strcmp(role, "security") != 0 &&
	    strcmp(role, "hr") != 0 && strcmp(role, "metrics") != 0) {
		fprintf(stderr, "dnswarden token: unknown role \"%s\":"
		    " expected admin, security, hr or metrics\n", role);
		return 2;
	}
	if (http_random_hex(token, TOKEN_BYTES) == -1 ||
	    EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) !=
	    1) {
		fprintf(stderr, "dnswarden token: no randomness\n");
		return 1;
	}
	for (unsigned i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	printf("token: %s\n"
	    "Give the token to the program (header \"Authorization: Bearer"
	    " TOKEN\");\npaste this line under http.tokens:\n"
	    "    - { name: \"%s\", role: \"%s\", sha256: \"%s\" }\n",
	    token, name, role, hex);
	explicit_bzero(token, sizeof(token));
	return 0;
}
