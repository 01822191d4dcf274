package s3

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/config"
)

// OpenConfig opens the bucket of a registry's s3 driver parameters (read
// with the config package) and the store in it, with the driver's key
// rules: the layout is at [config.S3.Prefix]. Requests use path style when
// forcepathstyle is set (v3) or regionendpoint is (2.8 always does then);
// secure: false means plain http for an endpoint without a scheme;
// skipverify turns certificate checks off. Without both static keys, the
// request is anonymous: for the AWS credential chain, build a client and
// use [New].
func OpenConfig(ctx context.Context, c config.S3, opts ...regstore.Option) (*regstore.Store, *FS, error) {
	endpoint := c.RegionEndpoint
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if !c.Secure {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	o := s3.Options{
		Region:                     c.Region,
		UsePathStyle:               c.ForcePathStyle || c.RegionEndpoint != "",
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if endpoint != "" {
		o.BaseEndpoint = aws.String(endpoint)
	}
	if c.AccessKey != "" && c.SecretKey != "" {
		o.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")
	}
	if c.SkipVerify {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the registry's skipverify
		}}
	}
	// The driver's keys: TrimLeft(TrimRight(rootdirectory, "/") + "/docker/...", "/");
	// the backend's root is everything before docker/registry/v2.
	root := strings.TrimSuffix(c.Prefix(), regstore.DefaultLayoutRoot)
	f, err := New(ctx, Config{Bucket: c.Bucket, Client: s3.New(o), RootDirectory: root})
	if err != nil {
		return nil, nil, err
	}
	s, err := regstore.Open(f, opts...)
	if err != nil {
		return nil, nil, err
	}
	return s, f, nil
}
