/*
 * bl_rpz: response policy zones (draft-vixie-dnsop-dns-rpz) as imported
 * lists. Only QNAME triggers with the NXDOMAIN action ("CNAME .") and the
 * PASSTHRU action ("CNAME rpz-passthru.") mean what a dnswarden entry
 * means; the other actions (NODATA, DROP, TCP-only, local data) and the
 * other triggers (rpz-ip, rpz-nsdname, ...) are skipped and counted.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "bl_name.h"
#include "bl_rpz.h"

enum rpz_action {
	RPZ_BLOCK,
	RPZ_ALLOW,
	RPZ_OTHER,
};

struct rpz {
	struct bl_loader	*l;
	const char		*path;
	uint32_t		 file;
	uint32_t		 block;
	uint32_t		 allow;		/* BL_NONE until needed */
	ldns_rdf		*apex;		/* the SOA's owner; NULL before */
	struct bl_import_counts	*n;
	size_t			 line;
};

static void
rpz_skip(struct rpz *z)
{
	if (z->n->skipped++ == 0)
		z->n->first_skipped = z->line;
}

static enum rpz_action
rpz_action(const ldns_rr *rr)
{
	const ldns_rdf *t = ldns_rr_rdf(rr, 0);

	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || t == NULL)
		return RPZ_OTHER;
	if (ldns_dname_label_count(t) == 0)
		return RPZ_BLOCK;		/* "CNAME ." */
	if (ldns_rdf_size(t) == 14 &&
	    strncasecmp((const char *)ldns_rdf_data(t), "\014rpz-passthru", 13)
	    == 0)
		return RPZ_ALLOW;
	return RPZ_OTHER;
}

/*
 * The owner of rr as text relative to the zone apex, into out (256
 * bytes). Returns its length, 0 for the apex itself, -1 when the owner
 * is outside the zone, -2 when its text does not fit out.
 */
static int
rpz_owner(struct rpz *z, const ldns_rr *rr, char *out)
{
	ldns_rdf *o = ldns_rdf_clone(ldns_rr_owner(rr));
	size_t keep;
	char *s;
	int len;

	if (o == NULL)
		return -1;
	ldns_dname2canonical(o);
	keep = ldns_dname_label_count(o);
	if (z->apex != NULL) {
		if (ldns_dname_compare(o, z->apex) == 0 ||
		    !ldns_dname_is_subdomain(o, z->apex)) {
			len = ldns_dname_compare(o, z->apex) == 0 ? 0 : -1;
			ldns_rdf_deep_free(o);
			return len;
		}
		keep -= ldns_dname_label_count(z->apex);
	}
	s = ldns_rdf2str(o);
	ldns_rdf_deep_free(o);
	if (s == NULL)
		return -1;
	/* The first keep labels, as text: cut at the keep-th dot. */
	len = 0;
	for (size_t dots = 0; s[len] != '\0'; len++) {
		if (s[len] == '\\' && s[len + 1] != '\0')
			len++;
		else if (s[len] == '.' && ++dots == keep)
			break;
	}
	/* Escapes (\DDD) make the text of a name up to four times longer
	 * than its 255 octets: such a name does not fit out, and is skipped. */
	if (len > 255) {
		free(s);
		return -2;
	}
	memcpy(out, s, (size_t)len);
	out[len] = '\0';
	free(s);
	return len;
}

/* One record that is not SOA or NS. */
static int
rpz_record(struct rpz *z, const ldns_rr *rr)
{
	char text[256], why[BL_WHY_MAX], show[BL_SHOW_MAX];
	enum rpz_action a = rpz_action(rr);
	struct bl_name nm;
	uint32_t o;
	int len;

	z->n->rules++;
	if ((len = rpz_owner(z, rr, text)) <= 0) {
		bl_file_warn(z->l, z->file, z->line, 1, "record %s; skipped",
		    len == 0 ? "at the apex of the zone" : len == -2 ?
		    "with an owner name too long as text" :
		    "outside the zone");
		return 0;
	}
	/* Triggers other than a query name live under "rpz-*" labels. */
	if (a == RPZ_OTHER || strstr(text, "rpz-") != NULL) {
		rpz_skip(z);
		return 0;
	}
	if (bl_name_parse(text, (size_t)len, BL_NAME_ENTRY, &nm, why) == -1) {
		bl_file_warn(z->l, z->file, z->line, 1, "invalid domain name "
		    "\"%s\": %s; skipped", bl_text_show(text, (size_t)len, show),
		    why);
		return 0;
	}
	z->n->names++;
	if (a == RPZ_ALLOW && z->allow == BL_NONE &&
	    (z->allow = bl_origin_add(z->l, BL_NONE, z->file, NULL)) ==
	    BL_NONE)
		return -1;
	o = a == RPZ_ALLOW ? z->allow : z->block;
	return bl_entry_add(z->l, &nm, o, z->line, 1);
}

static int
rpz_rr(struct rpz *z, ldns_rr *rr)
{
	switch (ldns_rr_get_type(rr)) {
	case LDNS_RR_TYPE_SOA:
		if (z->apex == NULL) {
			if ((z->apex = ldns_rdf_clone(ldns_rr_owner(rr))) ==
			    NULL)
				return -1;
			ldns_dname2canonical(z->apex);
		}
		return 0;
	case LDNS_RR_TYPE_NS:
		return 0;
	default:
		return rpz_record(z, rr);
	}
}

/* Skip a UTF-8 byte order mark, which ldns would take for a name. */
static void
rpz_skip_bom(FILE *f)
{
	unsigned char b[3];

	if (fread(b, 1, 3, f) != 3 || memcmp(b, "\xef\xbb\xbf", 3) != 0)
		rewind(f);
}

int
bl_rpz_read(struct bl_loader *l, FILE *f, const char *path, uint32_t file,
    uint32_t block, struct bl_import_counts *n)
{
	struct rpz z = { .l = l, .path = path, .file = file, .block = block,
	    .allow = BL_NONE, .n = n };
	ldns_rdf *origin = NULL, *prev = NULL;
	uint32_t ttl = 3600;
	int line_nr = 0, rc = 0;
	ldns_status st;
	ldns_rr *rr;
	long at;

	rpz_skip_bom(f);
	while (rc == 0 && !feof(f)) {
		at = ftell(f);
		rr = NULL;
		st = ldns_rr_new_frm_fp_l(&rr, f, &ttl, &origin, &prev,
		    &line_nr);
		z.line = (size_t)line_nr;
		if (st == LDNS_STATUS_OK) {
			if (n->rules == 0)
				n->first_rule = z.line;
			rc = rpz_rr(&z, rr);
			ldns_rr_free(rr);
		} else if (st == LDNS_STATUS_SYNTAX_INCLUDE) {
			bl_file_warn(l, file, z.line, 1, "$INCLUDE is not "
			    "followed; skipped");
		} else if (st != LDNS_STATUS_SYNTAX_EMPTY &&
		    st != LDNS_STATUS_SYNTAX_TTL &&
		    st != LDNS_STATUS_SYNTAX_ORIGIN) {
			if (n->rules++ == 0)
				n->first_rule = z.line;
			bl_file_warn(l, file, z.line, 1, "cannot read the "
			    "record: %s; skipped", ldns_get_errorstr_by_id(st));
		}
		if (ftell(f) == at)	/* no progress: never loop */
			break;
	}
	if (rc == -1)
		bl_loader_oom(l, path);
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	ldns_rdf_deep_free(z.apex);
	return rc;
}
