package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/mediagw/mediagw/service/client"
)

// A service uploads a file, resumed by itself if the stream breaks, with
// progress, then waits until X can use the media.
func Example() {
	ctx := context.Background()
	c, err := client.New(mediagwAddr, client.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	progress := func(p client.Progress) {
		fmt.Fprintf(os.Stderr, "\r%3d%% sent, %d resumes", 100*p.Sent/p.Total, p.Resumes)
	}
	res, err := c.Upload(ctx, client.File(clipPath), client.UploadOptions{Progress: progress})
	if err != nil {
		log.Fatal(err)
	}
	st, err := c.WaitUsable(ctx, res.MediaID)
	fmt.Println(res.Size, res.IdempotencyKey != "", st.GetState(), err)
	// Output: 3000000 true PROCESSING_STATE_SUCCEEDED <nil>
}

// Errors carry the code and mediagw's details; bad input is not retried.
func ExampleError() {
	c, err := client.New(mediagwAddr, client.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	notPNG := strings.NewReader("plain text, not an image")
	_, err = c.Upload(context.Background(), client.Reader(notPNG, int64(notPNG.Len())), client.UploadOptions{MediaType: "image/png"})
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code == codes.InvalidArgument, client.IsRetryable(err), e.Attempts)
	}
	// Output: true false 1
}

// Over REST (for callers without HTTP/2), a channel receives progress.
func ExampleWithREST() {
	c, err := client.New("", client.WithREST(mediagwURL))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ch, drained := make(chan client.Progress, 16), make(chan struct{})
	go func() {
		defer close(drained)
		for p := range ch {
			if p.Done {
				fmt.Println("done:", p.Sent == p.Total)
			}
		}
	}()
	_, err = c.Upload(context.Background(), client.File(clipPath), client.UploadOptions{Progress: client.ProgressChan(ch)})
	close(ch)
	<-drained
	fmt.Println(err)
	// Output:
	// done: true
	// <nil>
}
