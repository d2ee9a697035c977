// Google's Java client libraries against a Keyward key file, as Debian
// packages them: google-auth-library-java's ServiceAccountCredentials and
// the seed's GoogleCredential (google-api-client), each for a token and a
// delegated one, and self-signed JWTs (ServiceAccountJwtAccessCredentials):
// for the audience given, and, without one, as an HTTP client of
// google-http-client makes them (HttpCredentialsAdapter), with aud the URL
// it calls: the API's root (AUDIENCE/) and a path under it.
// Prints name=value lines for the Go test (TestJavaGoogleAuth).
//
// Usage: java -cp '/usr/share/java/*' GoogleAuth.java KEY_FILE AUDIENCE SUBJECT
import com.google.api.client.googleapis.auth.oauth2.GoogleCredential;
import com.google.api.client.http.GenericUrl;
import com.google.api.client.http.HttpRequestFactory;
import com.google.api.client.http.javanet.NetHttpTransport;
import com.google.auth.http.HttpCredentialsAdapter;
import com.google.auth.oauth2.ServiceAccountCredentials;
import com.google.auth.oauth2.ServiceAccountJwtAccessCredentials;
import java.io.FileInputStream;
import java.net.URI;
import java.util.List;

public class GoogleAuth {
  public static void main(String[] args) throws Exception {
    String keyFile = args[0], audience = args[1], subject = args[2];
    ServiceAccountCredentials c = (ServiceAccountCredentials) ServiceAccountCredentials
        .fromStream(new FileInputStream(keyFile)).createScoped(List.of("orders.read"));
    c.refresh();
    System.out.println("token=" + c.getAccessToken().getTokenValue());
    ServiceAccountCredentials d = (ServiceAccountCredentials) c.createDelegated(subject);
    d.refresh();
    System.out.println("delegated=" + d.getAccessToken().getTokenValue());
    GoogleCredential g = GoogleCredential.fromStream(new FileInputStream(keyFile)).createScoped(List.of("orders.read"));
    g.refreshToken();
    System.out.println("googlecredential=" + g.getAccessToken());
    GoogleCredential gd = g.createDelegated(subject);
    gd.refreshToken();
    System.out.println("googlecredential_delegated=" + gd.getAccessToken());
    ServiceAccountJwtAccessCredentials s = ServiceAccountJwtAccessCredentials.fromStream(new FileInputStream(keyFile), URI.create(audience));
    String h = s.getRequestMetadata(URI.create(audience)).get("Authorization").get(0);
    System.out.println("self_signed=" + h.substring("Bearer ".length()));
    // The requests are built, not sent: the adapter sets the header then.
    HttpRequestFactory f = new NetHttpTransport().createRequestFactory(
        new HttpCredentialsAdapter(ServiceAccountJwtAccessCredentials.fromStream(new FileInputStream(keyFile))));
    for (String[] call : new String[][] {{"self_signed_root", "/"}, {"self_signed_path", "/orders?id=1"}}) {
      String auth = f.buildGetRequest(new GenericUrl(audience + call[1])).getHeaders().getAuthorization();
      System.out.println(call[0] + "=" + auth.substring("Bearer ".length()));
    }
  }
}
