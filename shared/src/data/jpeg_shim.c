/* JPEG decoding straight through libjpeg(-turbo), the library opencv's imdecode uses: same
 * settings (ISLOW IDCT, fancy upsampling, DCT scaling by 1/denom), so the same pixels, without
 * opencv's per-row RGB->BGR copy and scratch buffers. Rows are written into the caller's buffer.
 *
 * libjpeg reports errors by longjmp, which must not cross Rust frames: the whole decode runs in
 * this file, and Rust sees a return code and a message. Warnings that mean pixel data is missing
 * or unreadable (premature end of the file or of a data segment, which libjpeg fills with grey; a
 * bad Huffman code or a lost restart marker, after which it substitutes zeros) are errors while
 * pixels are being produced; every other warning (extraneous bytes between markers, ...) is
 * ignored, as opencv ignores them all. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#define WELD_JPEG_OK 0
#define WELD_JPEG_ERROR 1
#define WELD_JPEG_SIZE 2
#define WELD_JPEG_UNSUPPORTED 3

struct weld_err {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  int strict; /* missing-data warnings are errors while set */
  char *msg;  /* JMSG_LENGTH_MAX bytes */
};

static void weld_error_exit(j_common_ptr c) {
  struct weld_err *e = (struct weld_err *)c->err;
  c->err->format_message(c, e->msg);
  longjmp(e->jump, 1);
}

static void weld_emit_message(j_common_ptr c, int level) {
  struct weld_err *e = (struct weld_err *)c->err;
  int code = c->err->msg_code;
  if (level < 0 && e->strict &&
      (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE ||
       code == JWRN_MUST_RESYNC)) {
    weld_error_exit(c);
  }
}

static void weld_setup(struct jpeg_decompress_struct *c, struct weld_err *e, char *msg) {
  memset(c, 0, sizeof(*c));
  c->err = jpeg_std_error(&e->pub);
  e->pub.error_exit = weld_error_exit;
  e->pub.emit_message = weld_emit_message;
  e->strict = 1;
  e->msg = msg;
  msg[0] = 0;
}

/* Creates `c` over `data` and reads its header. Errors inside libjpeg longjmp to the caller's
 * setjmp; a tables-only stream returns WELD_JPEG_ERROR with a message. */
static int weld_read_header(struct jpeg_decompress_struct *c, const unsigned char *data,
                            unsigned long len, char *msg) {
  jpeg_create_decompress(c);
  jpeg_mem_src(c, data, len);
  if (jpeg_read_header(c, TRUE) != JPEG_HEADER_OK) {
    strcpy(msg, "no image in the JPEG stream (tables only)");
    return WELD_JPEG_ERROR;
  }
  return WELD_JPEG_OK;
}

/* Header of `data`: full-size height, width and the file's component count. */
int weld_jpeg_info(const unsigned char *data, unsigned long len, int *h, int *w, int *components,
                   char *msg) {
  struct jpeg_decompress_struct c;
  struct weld_err e;
  weld_setup(&c, &e, msg);
  if (setjmp(e.jump)) { /* setjmp may only stand alone in a condition */
    jpeg_destroy_decompress(&c);
    return WELD_JPEG_ERROR;
  }
  if (weld_read_header(&c, data, len, msg) != WELD_JPEG_OK) {
    jpeg_destroy_decompress(&c);
    return WELD_JPEG_ERROR;
  }
  *h = (int)c.image_height;
  *w = (int)c.image_width;
  *components = c.num_components;
  jpeg_destroy_decompress(&c);
  return WELD_JPEG_OK;
}

/* Decodes `data` at 1/denom scale into `out` (h * w * channels bytes, rows contiguous).
 * format: 0 = BGR, 1 = RGB, 2 = luma (one channel). A grey file gives three equal channels in
 * BGR/RGB; a CMYK/YCCK file is WELD_JPEG_UNSUPPORTED (opencv converts those its own way). */
int weld_jpeg_decode(const unsigned char *data, unsigned long len, int denom, int format,
                     unsigned char *out, int h, int w, char *msg) {
  struct jpeg_decompress_struct c;
  struct weld_err e;
  weld_setup(&c, &e, msg);
  if (setjmp(e.jump)) { /* setjmp may only stand alone in a condition */
    jpeg_destroy_decompress(&c);
    return WELD_JPEG_ERROR;
  }
  if (weld_read_header(&c, data, len, msg) != WELD_JPEG_OK) {
    jpeg_destroy_decompress(&c);
    return WELD_JPEG_ERROR;
  }
  if (c.num_components != 1 && c.num_components != 3) {
    snprintf(msg, JMSG_LENGTH_MAX, "%d colour components", c.num_components);
    jpeg_destroy_decompress(&c);
    return WELD_JPEG_UNSUPPORTED;
  }
  c.scale_num = 1;
  c.scale_denom = (unsigned int)denom;
  c.out_color_space = format == 0 ? JCS_EXT_BGR : format == 1 ? JCS_EXT_RGB : JCS_GRAYSCALE;
  jpeg_start_decompress(&c);
  int channels = format == 2 ? 1 : 3;
  if ((int)c.output_height != h || (int)c.output_width != w ||
      c.output_components != channels) {
    snprintf(msg, JMSG_LENGTH_MAX, "decodes to %ux%ux%d, expected %dx%dx%d", c.output_width,
             c.output_height, c.output_components, w, h, channels);
    jpeg_destroy_decompress(&c);
    return WELD_JPEG_SIZE;
  }
  size_t stride = (size_t)w * (size_t)channels;
  JSAMPROW rows[16];
  while (c.output_scanline < c.output_height) {
    JDIMENSION k = 0;
    for (; k < 16 && c.output_scanline + k < c.output_height; k++) {
      rows[k] = out + (size_t)(c.output_scanline + k) * stride;
    }
    if (jpeg_read_scanlines(&c, rows, k) == 0) {
      strcpy(msg, "no scanlines decoded (truncated data)");
      jpeg_destroy_decompress(&c);
      return WELD_JPEG_ERROR;
    }
  }
  /* every pixel is decoded: what follows (a missing EOI marker, trailing bytes) is not data */
  e.strict = 0;
  jpeg_finish_decompress(&c);
  jpeg_destroy_decompress(&c);
  return WELD_JPEG_OK;
}
