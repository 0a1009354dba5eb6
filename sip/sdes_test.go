package sip

import (
	"strings"
	"testing"

	"github.com/ccsbc/ccsbc/media"
)

const key30 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz" // 30 bytes: AES_CM_128 key||salt

func TestParseCrypto(t *testing.T) {
	tests := []struct {
		in      string
		suite   media.SRTPSuite
		tag     int
		wantErr string
	}{
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, suite: media.SRTPAESCM128HMACSHA1_80, tag: 1},
		{in: "7 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^31", suite: media.SRTPAESCM128HMACSHA1_32, tag: 7},
		{in: "2 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^48", suite: media.SRTPAESCM128HMACSHA1_80, tag: 2},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20", wantErr: "lifetime 2^20 is shorter"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1048576", wantErr: "lifetime 1048576 is shorter"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^31|1:4", wantErr: "MKI is not supported"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=1", wantErr: "session parameter KDR=1"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", wantErr: "session parameter UNENCRYPTED_SRTP"},
		{in: "1 F8_128_HMAC_SHA1_80 inline:" + key30, wantErr: "suite F8_128_HMAC_SHA1_80 is not supported"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", wantErr: "key length"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", wantErr: "not base64"},
		{in: "1 AES_CM_128_HMAC_SHA1_80 uri:https://x", wantErr: "not inline"},
		{in: "x AES_CM_128_HMAC_SHA1_80 inline:" + key30, wantErr: "tag"},
		{in: "1", wantErr: "needs a tag"},
	}
	for _, tc := range tests {
		c, err := parseCrypto(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), key30) {
				t.Errorf("%q: error text carries the key", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.Keys.Suite != tc.suite || c.Tag != tc.tag {
			t.Errorf("%q: got %v tag %d", tc.in, c.Keys.Suite, c.Tag)
		}
	}
}

func TestFormatCryptoRoundTrip(t *testing.T) {
	for _, suite := range []media.SRTPSuite{media.SRTPAESCM128HMACSHA1_80, media.SRTPAESCM128HMACSHA1_32, media.SRTPAEADAES128GCM, media.SRTPAEADAES256GCM, media.SRTPAES256CMHMACSHA1_80} {
		k, err := media.GenerateSRTPKeys(suite)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCrypto(formatCrypto(3, k))
		if err != nil {
			t.Fatalf("%v: %v", suite, err)
		}
		if c.Tag != 3 || !sameKeys(c.Keys, k) {
			t.Errorf("%v: round trip changed the keys", suite)
		}
	}
}

func TestChooseCrypto(t *testing.T) {
	gcm, _ := media.GenerateSRTPKeys(media.SRTPAEADAES128GCM)
	lines := []string{formatCrypto(1, gcm), "2 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20", "3 AES_CM_128_HMAC_SHA1_32 inline:" + key30}
	// A Cisco phone's peer allows no GCM: the first line is skipped, the
	// second refused for its lifetime, the third chosen.
	c, err := chooseCrypto(lines, []media.SRTPSuite{media.SRTPAESCM128HMACSHA1_80, media.SRTPAESCM128HMACSHA1_32})
	if err != nil || c.Tag != 3 {
		t.Fatalf("got tag %d err %v, want tag 3", c.Tag, err)
	}
	_, err = chooseCrypto(lines[:2], []media.SRTPSuite{media.SRTPAESCM128HMACSHA1_80})
	if err == nil || !strings.Contains(err.Error(), "not allowed") || !strings.Contains(err.Error(), "lifetime") {
		t.Fatalf("err %v, want both reasons", err)
	}
}
